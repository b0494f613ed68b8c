"""Image classification: cross-entropy training, top-1/top-5 accuracy evaluation, and figures
of where the network's attention looks on a few test images."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from attention_zoo.engine.trainer import StepOutput
from attention_zoo.metrics.accuracy import topk_correct
from attention_zoo.viz.image_attention import cbam_spatial_maps, grad_cam, non_local_maps, plot_maps

PER_CLASS = "per_class"
PER_CLASS_LIMIT = 10
TABLE_IMAGES = 32  # misclassified test images in the W&B predictions table


def first_of_each_class(labels: torch.Tensor, limit: int = PER_CLASS_LIMIT) -> list[int]:
    """Index of the first image of each of the first ``limit`` classes present in ``labels`` (N,),
    so that figures show different classes whatever order the test set is stored in."""
    classes = sorted(set(labels.tolist()))[:limit]
    return [int((labels == c).nonzero()[0]) for c in classes]


class ClassificationTask:
    monitor = "acc"
    monitor_mode = "max"
    unit = "img"

    def __init__(
        self,
        data=None,
        output_dir: str | Path | None = None,
        label_smoothing: float = 0.0,
        figure_images: Sequence[int] | str = (),
        figure_queries: Sequence[Sequence[float]] = ((0.5, 0.5),),
    ):
        self.data, self.output_dir, self.label_smoothing = data, Path(output_dir) if output_dir else None, label_smoothing
        if isinstance(figure_images, str):
            if figure_images != PER_CLASS:
                raise ValueError(
                    f"task.figure_images={figure_images!r}: give a list of test indices, '{PER_CLASS}' "
                    f"(the first test image of each of the first {PER_CLASS_LIMIT} classes), or [] for no figures."
                )
            figure_images = first_of_each_class(data.test.labels) if data is not None else []
        if figure_images and data is not None:
            n_test = len(data.test.labels)
            if any(not 0 <= i < n_test for i in figure_images):
                raise ValueError(
                    f"task.figure_images={list(figure_images)} must index the {n_test} test images (0..{n_test - 1}); "
                    "set task.figure_images=[] to draw no attention figures."
                )
        self.figure_images, self.figure_queries = list(figure_images), [tuple(q) for q in figure_queries]
        self.test_predictions: tuple[torch.Tensor, torch.Tensor] | None = None  # (class, probability) per test image

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
        predictions = []
        for images, labels in batches:
            logits = model(images).float()
            predictions.append(F.softmax(logits, dim=1).max(dim=1))
            loss_sum += float(F.cross_entropy(logits, labels, reduction="sum"))
            correct = topk_correct(logits, labels)
            top1, top5, count = top1 + correct[1], top5 + correct[5], count + len(labels)
        if split == "test":
            classes, probabilities = (torch.cat([getattr(p, k) for p in predictions]).cpu() for k in ("indices", "values"))
            self.test_predictions = (classes, probabilities)
        return {"loss": loss_sum / count, "acc": top1 / count, "acc_top5": top5 / count, "error": 1 - top1 / count}

    def prediction_table(self, model: nn.Module, limit: int = TABLE_IMAGES) -> tuple[list[str], list[list]] | None:
        """The first ``limit`` misclassified test images: image, label, prediction, its probability,
        and Grad-CAM of the last stage for the predicted class (uint8 map, min-max scaled)."""
        if self.test_predictions is None or self.data is None:
            return None
        predicted, probability = self.test_predictions
        labels = self.data.test.labels[: len(predicted)]
        wrong = (predicted != labels).nonzero().flatten()[:limit]
        if len(wrong) == 0:
            return None
        device = next(model.parameters()).device
        model.eval()
        raw = self.data.test.images[wrong]  # (N, 3, H, W) uint8
        cams = grad_cam(model, self.data.normalize(raw).to(device), model.stages[-1], predicted[wrong].to(device)).cpu()
        low, high = cams.amin(dim=(1, 2), keepdim=True), cams.amax(dim=(1, 2), keepdim=True)
        cams = ((cams - low) / (high - low).clamp_min(1e-12) * 255).to(torch.uint8)  # (N, H, W)
        names = self.data.class_names
        rows = [
            [int(i), raw[k], names[labels[i]], names[predicted[i]], round(float(probability[i]), 4), cams[k]]
            for k, i in enumerate(wrong.tolist())
        ]
        return ["index", "image", "label", "prediction", "p", "Grad-CAM"], rows

    def figures(self, model: nn.Module) -> dict[str, Path]:
        """For the ``figure_images`` of the test split: Grad-CAM of the last stage for the predicted
        class beside CBAM's spatial maps, if the model has them (Woo et al. Fig. 4 style), in
        <run>/figures/attention_maps_test.png; and the first non-local block's weights for each of
        ``figure_queries`` (Wang et al. Fig. 3 style) in figures/non_local_test.png. By W&B key."""
        if self.output_dir is None or self.data is None or not self.figure_images:
            return {}
        device = next(model.parameters()).device
        raw = self.data.test.images[self.figure_images]  # (B, 3, 32, 32) uint8
        images = self.data.normalize(raw).to(device)
        labels = self.data.test.labels[self.figure_images]
        model.eval()
        with torch.no_grad():
            predicted = model(images).argmax(dim=1).cpu()
        names = self.data.class_names
        rows = [f"#{i}: {names[y]} -> {names[p]}" for i, y, p in zip(self.figure_images, labels.tolist(), predicted.tolist())]
        figures = {}
        columns = {
            "Grad-CAM (predicted)": grad_cam(model, images, model.stages[-1], predicted),
            **cbam_spatial_maps(model, images),
        }
        figures["figures/attention_maps_test"] = plot_maps(
            raw,
            columns,
            rows,
            self.output_dir / "figures" / "attention_maps_test.png",
            title="test image #i: label -> prediction; maps min-max scaled per image",
        )
        queries = non_local_maps(model, images, self.figure_queries)
        if queries:
            figures["figures/non_local_test"] = plot_maps(
                raw,
                queries,
                rows,
                self.output_dir / "figures" / "non_local_test.png",
                title="first non-local block: weights over key positions for the marked query",
                markers={name: q for name, q in zip(queries, self.figure_queries)},
            )
        return figures
