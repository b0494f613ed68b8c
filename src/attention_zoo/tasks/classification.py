"""Image classification: cross-entropy training, top-1/top-5 accuracy evaluation."""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn
from torch.nn import functional as F

from attention_zoo.engine.trainer import StepOutput
from attention_zoo.metrics.accuracy import topk_correct


class ClassificationTask:
    monitor = "acc"
    monitor_mode = "max"
    unit = "img"

    def __init__(self, label_smoothing: float = 0.0):
        self.label_smoothing = label_smoothing

    def training_step(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> StepOutput:
        images, labels = batch  # (B, 3, H, W), (B,)
        logits = model(images)  # (B, K)
        loss = F.cross_entropy(logits.float(), labels, label_smoothing=self.label_smoothing)
        correct = int((logits.argmax(dim=1) == labels).sum())
        return StepOutput(loss=loss, count=len(labels), sums={"acc": correct})

    def evaluate(
        self, model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], split: str = "val"
    ) -> dict[str, float]:
        """loss (mean cross-entropy), acc (top-1) and acc_top5 over all batches."""
        loss_sum, top1, top5, count = 0.0, 0, 0, 0
        for images, labels in batches:
            logits = model(images).float()
            loss_sum += float(F.cross_entropy(logits, labels, reduction="sum"))
            correct = topk_correct(logits, labels)
            top1, top5, count = top1 + correct[1], top5 + correct[5], count + len(labels)
        return {"loss": loss_sum / count, "acc": top1 / count, "acc_top5": top5 / count, "error": 1 - top1 / count}
