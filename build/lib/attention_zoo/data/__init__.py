"""Datasets: loading (download when online, local copies offline) and batching."""
