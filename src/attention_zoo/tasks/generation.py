"""Class-conditional image generation (SAGAN, Zhang et al. 2019): each batch trains the
discriminator, then the generator, on the hinge losses of Eq. 4, and evaluation compares
generated and real images in the feature space of a fixed CIFAR-10 classifier.

- Training (``training_steps``): the batch is split into ``d_steps_per_g_step`` chunks, one
  discriminator update per chunk on real images against G(z, y) for fresh z and the chunk's
  labels; then one generator update on a chunk-sized batch of fresh z and uniformly drawn
  classes, with D frozen; then the moving average of G (model.ema_decay), if kept. SAGAN
  uses one D step per G step with TTUR (lr_D = 4 lr_G: optim.group_lr). All noise comes from
  torch's global generator, which the checkpoints store, so a resumed run draws what an
  uninterrupted one would.
- Evaluation (``evaluate``): as many generated images as real ones in the split (or
  ``eval_samples``), with the real images' class labels and a fixed noise draw, scored by
  FID, precision and recall in the classifier's feature space (metrics/generative.py); on the
  test split, with ``inception_weights`` (a local torch-fidelity Inception-v3 file), also the
  published Inception FID and Inception Score. The
  generator is G's moving average when kept, in eval mode. Selection of the best epoch uses the
  validation FID; the test split is scored once, with the weights that selection chose.
- Figures: a fixed-noise sample grid (one row per class) after every epoch, in
  <run>/figures/samples/ and W&B; after the test, the generator's self-attention maps for chosen
  query points of a few samples (the paper's Fig. 1).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import torch
from torch import nn

from attention_zoo.engine.trainer import StepOutput, unwrap
from attention_zoo.metrics.generative import ClassifierFeatures, feature_space_scores, inception_scores
from attention_zoo.models.sagan import hinge_discriminator_loss, hinge_generator_loss
from attention_zoo.viz.image_attention import plot_maps

SAMPLES_DIR = "figures/samples"


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float -> [0, 255] uint8, same shape."""
    return ((images + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


class GenerationTask:
    monitor = "fid"
    monitor_mode = "min"
    unit = "img"

    def __init__(
        self,
        data=None,
        output_dir: str | Path | None = None,
        feature_classifier: str | None = None,
        d_steps_per_g_step: int = 1,
        eval_samples: int | None = None,
        noise_seed: int = 2019,
        sample_columns: int = 10,
        attention_images: int = 4,
        attention_queries: Sequence[Sequence[float]] = ((0.25, 0.25), (0.5, 0.5), (0.75, 0.75)),
        inception_weights: str | None = None,
        device: torch.device | None = None,
    ):
        if feature_classifier is None:
            raise ValueError(
                "task.feature_classifier is not set: the generative metrics need a CIFAR-10 classifier run "
                "(`make feature-classifier` trains and exports one)."
            )
        if d_steps_per_g_step < 1:
            raise ValueError(f"task.d_steps_per_g_step={d_steps_per_g_step} must be at least 1.")
        self.data, self.output_dir = data, Path(output_dir) if output_dir else None
        self.features = ClassifierFeatures(feature_classifier, device or torch.device("cpu"))
        self.d_steps, self.eval_samples, self.noise_seed = d_steps_per_g_step, eval_samples, noise_seed
        self.sample_columns, self.attention_images = sample_columns, attention_images
        self.attention_queries = [tuple(q) for q in attention_queries]
        self.inception_weights = inception_weights
        self._real_features: dict[tuple[str, int], torch.Tensor] = {}  # (split, n) -> features, computed once
        self.test_details = {"feature_network": self.features.identity, "noise_seed": noise_seed}

    # ------------------------------------------------------------------ training
    def training_steps(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> Iterator[StepOutput]:
        gan = unwrap(model)
        images, labels = batch  # (B, 3, 32, 32) in [-1, 1], (B,)
        if len(labels) < self.d_steps:
            raise ValueError(f"A batch of {len(labels)} images cannot give task.d_steps_per_g_step={self.d_steps} D steps.")
        for real, classes in zip(images.chunk(self.d_steps), labels.chunk(self.d_steps)):
            n = len(classes)
            with torch.no_grad():
                fake = gan.generator(torch.randn(n, gan.cfg.z_dim, device=real.device), classes)  # (n, 3, 32, 32)
            real_logits, fake_logits = gan.discriminator(real, classes), gan.discriminator(fake, classes)  # (n,) each
            loss = hinge_discriminator_loss(real_logits, fake_logits)
            sums = {"d_loss": loss, "d_real": real_logits.mean(), "d_fake": fake_logits.mean()}  # train/d_*: the last D step's
            yield StepOutput(loss, n, {key: value.item() * n for key, value in sums.items()})
        classes = torch.randint(gan.cfg.num_classes, (n,), device=images.device)
        gan.discriminator.requires_grad_(False)  # the generator's loss updates G only
        try:
            fake = gan.generator(torch.randn(n, gan.cfg.z_dim, device=images.device), classes)
            fake_logits = gan.discriminator(fake, classes)
            yield StepOutput(hinge_generator_loss(fake_logits), n)  # train/loss: the generator's
        finally:
            gan.discriminator.requires_grad_(True)
        gan.update_ema()  # after G's update (the trainer resumes this generator once it has stepped)

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate(self, model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], split: str = "val"):
        """{"fid", "precision", "recall"} of as many generated images as real ones (or eval_samples)."""
        real, labels = (torch.cat(parts) for parts in zip(*((images.cpu(), y.cpu()) for images, y in batches)))
        n = len(labels) if self.eval_samples is None else min(self.eval_samples, len(labels))
        key = (split, n)
        if key not in self._real_features:
            self._real_features[key] = self.features(real[:n])
        fake = self.generate(model, labels[:n], self.noise_seed)
        scores = feature_space_scores(self._real_features[key], self.features(fake))
        if split == "test":
            self.test_details["samples"] = n
            if self.inception_weights:  # the published metrics, on the test split only (Inception is slow on a CPU)
                scores.update(inception_scores(to_uint8(real[:n]), to_uint8(fake), self.inception_weights))
        return scores

    def generate(self, model: nn.Module, classes: torch.Tensor, seed: int, batch_size: int = 250) -> torch.Tensor:
        """Images (N, 3, 32, 32) in [-1, 1] of the evaluation generator for ``classes`` (N,), from
        noise drawn by a generator seeded with ``seed`` (the same images for the same weights)."""
        gan = unwrap(model)
        sampler = gan.sampler()
        device = next(sampler.parameters()).device
        noise = torch.randn(len(classes), gan.cfg.z_dim, generator=torch.Generator().manual_seed(seed))  # (N, z_dim)
        was_training = sampler.training
        sampler.eval()
        try:
            with torch.no_grad():
                chunks = zip(noise.split(batch_size), classes.split(batch_size))
                return torch.cat([sampler(z.to(device), y.to(device)).cpu() for z, y in chunks])
        finally:
            sampler.train(was_training)

    # ------------------------------------------------------------------ figures
    def sample_grid(self, model: nn.Module, path: Path) -> Path:
        """One row per class, ``sample_columns`` fixed-noise samples each."""
        from torchvision.utils import save_image

        num_classes = unwrap(model).cfg.num_classes
        classes = torch.arange(num_classes).repeat_interleave(self.sample_columns)  # (K * columns,)
        images = self.generate(model, classes, self.noise_seed + 1)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image((images + 1) / 2, path, nrow=self.sample_columns, padding=1)
        return path

    def epoch_figures(self, model: nn.Module, epoch: int) -> dict[str, Path]:
        """After each epoch: the fixed-noise sample grid, <run>/figures/samples/epoch_NNN.png."""
        if self.output_dir is None:
            return {}
        return {"figures/samples": self.sample_grid(model, self.output_dir / SAMPLES_DIR / f"epoch_{epoch:03d}.png")}

    def figures(self, model: nn.Module) -> dict[str, Path]:
        """After the test (the selected weights): the sample grid, and, for a generator with
        self-attention, the weights of its last attention module over the key positions for each
        of ``attention_queries`` ((y, x) fractions of the map) on a few samples (Fig. 1 style)."""
        if self.output_dir is None:
            return {}
        figures = {"figures/samples_test": self.sample_grid(model, self.output_dir / "figures" / "samples_test.png")}
        modules = list(unwrap(model).sampler().attention.values())
        if not modules or not self.attention_images:
            return figures
        classes = torch.arange(self.attention_images) % unwrap(model).cfg.num_classes
        images = self.generate(model, classes, self.noise_seed + 2)  # leaves each module's last_attention
        beta = modules[-1].last_attention.cpu()  # (B, N, N): row = query position, over key positions
        side = int(beta.shape[-1] ** 0.5)
        maps = {}
        for y, x in self.attention_queries:
            row, col = min(int(y * side), side - 1), min(int(x * side), side - 1)
            maps[f"query ({y:g}, {x:g})"] = beta[:, row * side + col].reshape(len(classes), side, side)
        names = getattr(self.data, "class_names", None) or [str(c) for c in range(unwrap(model).cfg.num_classes)]
        raw = to_uint8(images)
        figures["figures/generator_attention"] = plot_maps(
            raw,
            maps,
            [names[c] for c in classes.tolist()],
            self.output_dir / "figures" / "generator_attention.png",
            title=f"generator's self-attention at {side}x{side}: weights over key positions for the marked query",
            markers={name: q for name, q in zip(maps, self.attention_queries)},
        )
        return figures
