"""The glue between a model and the trainer: loss, evaluation, decoding, metrics."""
