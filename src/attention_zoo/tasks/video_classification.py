"""Clip classification (Wang et al. 2018's video task): the image classification task's loss and
metrics on clips (B, 3, T, H, W), with the spacetime non-local block's attention over time as
its figure (Figs. 1 and 3) instead of the image figures."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from attention_zoo.tasks.classification import ClassificationTask
from attention_zoo.viz.image_attention import plot_spacetime_maps, spacetime_maps


class VideoClassificationTask(ClassificationTask):
    def __init__(
        self,
        data=None,
        output_dir: str | Path | None = None,
        label_smoothing: float = 0.0,
        figure_clips: int = 2,
        figure_queries: Sequence[Sequence[float]] = ((1.0, 0.25, 0.25), (1.0, 0.75, 0.75)),
    ):
        super().__init__(data, output_dir, label_smoothing)
        self.figure_clips, self.figure_queries = figure_clips, [tuple(q) for q in figure_queries]

    def prediction_table(self, model: nn.Module, limit: int = 0):
        return None  # the image table's Grad-CAM has no meaning for clips; the figure shows the attention

    def figures(self, model: nn.Module) -> dict[str, Path]:
        """The first ``figure_clips`` test clips of each class: the first spacetime non-local
        block's weights over all frames for each (t, y, x) query, in figures/spacetime_attention_test.png."""
        if self.output_dir is None or self.data is None or not self.figure_clips:
            return {}
        labels = self.data.test.labels
        picked = [int(i) for c in labels.unique().tolist() for i in (labels == c).nonzero()[: self.figure_clips, 0]]
        raw = self.data.test.videos[picked]  # (B, 3, T, H, W) uint8
        device = next(model.parameters()).device
        model.eval()
        maps = spacetime_maps(model, self.data.normalize(raw).to(device), self.figure_queries)
        if not maps:
            return {}
        with torch.no_grad():
            predicted = model(self.data.normalize(raw).to(device)).argmax(dim=1).cpu()
        names = self.data.class_names
        rows = [f"#{i}: {names[labels[i]]} -> {names[p]}" for i, p in zip(picked, predicted.tolist())]
        path = plot_spacetime_maps(
            raw,
            maps,
            rows,
            self.output_dir / "figures" / "spacetime_attention_test.png",
            title="first spacetime non-local block: weights over every frame's positions for the query (+)",
        )
        return {"figures/spacetime_attention_test": path}
