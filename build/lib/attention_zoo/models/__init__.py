"""Whole architectures assembled from the mechanisms in ``attention_zoo.attention``."""
