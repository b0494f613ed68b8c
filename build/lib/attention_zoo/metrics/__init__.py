"""Metrics: accuracy here; sacreBLEU and COCO caption metrics with their tasks."""
