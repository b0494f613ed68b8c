"""Sample quality of a generator, measured in the feature space of a fixed network.

- FID (Heusel et al. 2017): ||μ_r - μ_g||² + Tr(Σ_r + Σ_g - 2 (Σ_r Σ_g)^{1/2}) between Gaussians
  fitted to the real and the generated features; computed by torchmetrics'
  FrechetInceptionDistance with the features handed in (an identity "feature network").
- Precision and recall (Kynkäänniemi et al. 2019): the share of generated samples inside the
  real features' k-nearest-neighbour manifold, and of real samples inside the generated one;
  computed by prdc (Naeem et al. 2020, whose precision and recall are these), k = 3 as both papers.

The papers use Inception-v3 pool features, which are not reachable offline here; this module
takes features from any network (the SAGAN pages use a CIFAR-10 classifier this repository
trains and records) and its numbers are named for that network: they are not comparable with
Inception FID.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from pathlib import Path

import torch
from torch import nn

NEAREST_K = 3


class _Given(nn.Module):
    """The "feature network" of torchmetrics' FID when the features are computed beforehand."""

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def feature_space_scores(real: torch.Tensor, fake: torch.Tensor, nearest_k: int = NEAREST_K) -> dict[str, float]:
    """{"fid", "precision", "recall"} between real (N, D) and generated (M, D) features."""
    import prdc
    from torchmetrics.image.fid import FrechetInceptionDistance

    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"Features must be (N, D) and (M, D) with one D; got {tuple(real.shape)} and {tuple(fake.shape)}.")
    fid = FrechetInceptionDistance(feature=_Given(), input_img_size=(real.shape[1],), normalize=True)
    fid.update(real.double(), real=True)
    fid.update(fake.double(), real=False)
    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the set sizes
        pr = prdc.compute_prdc(real_features=real.double().numpy(), fake_features=fake.double().numpy(), nearest_k=nearest_k)
    return {"fid": float(fid.compute()), "precision": float(pr["precision"]), "recall": float(pr["recall"])}


class ClassifierFeatures:
    """A CIFAR classifier trained by this repository (a run folder or an ``attention-zoo-export``
    file) as a fixed feature map: generator images in [-1, 1] -> its globally pooled last-stage
    features (B, D), with the classifier's own input normalization. ``identity`` names the network
    in the run record (path, test accuracy where the run says it, and a hash of its weights)."""

    def __init__(self, path: str | Path, device: torch.device, batch_size: int = 500):
        from attention_zoo import portable  # portable -> build -> tasks -> this module: imported on use

        path = Path(path).expanduser()
        if not path.exists():
            raise FileNotFoundError(
                f"No feature classifier at {path}. The generative metrics are computed in the feature space of a "
                "CIFAR-10 classifier trained by this repository: build it with `make feature-classifier`, or set "
                "task.feature_classifier=<run folder or exported file> (see results/sagan.md)."
            )
        trained = portable.load(path, device)
        if trained.task != "classification" or not hasattr(trained.model, "features"):
            raise ValueError(f"task.feature_classifier={path} is a {trained.task} model; it must be a CIFAR classifier run.")
        self.network, self.device, self.batch_size = trained.model, device, batch_size
        self.mean = torch.tensor(trained.inputs["mean"], device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(trained.inputs["std"], device=device).view(1, 3, 1, 1)
        digest = hashlib.sha256()
        for name, tensor in sorted(self.network.state_dict().items()):
            digest.update(name.encode()), digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        self.identity = {"path": str(path), "weights": trained.source, "weights_sha256": digest.hexdigest()}
        metrics = path / "metrics.json"
        if metrics.is_file():
            self.identity["test_acc"] = json.loads(metrics.read_text()).get("test", {}).get("acc")

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """images: (N, 3, 32, 32) in [-1, 1] -> features (N, D) on the CPU, in float64."""
        features = []
        for chunk in images.split(self.batch_size):
            pixels = (chunk.to(self.device).float() + 1) / 2  # [0, 1]
            features.append(self.network.features((pixels - self.mean) / self.std).double().cpu())
        return torch.cat(features)


INCEPTION_WEIGHTS_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
)


def inception_scores(real: torch.Tensor, fake: torch.Tensor, weights: str | Path, batch_size: int = 100) -> dict[str, float]:
    """The published metrics, when Inception-v3 weights are at hand: FID in Inception's 2048-d pool
    features and the Inception Score (10 splits) of ``fake``, through torchmetrics with
    torch-fidelity's TF-compatible Inception-v3 read from ``weights`` (torch-fidelity's file, which
    torch.load unpickles: use a file you trust). real, fake: uint8 (N, 3, H, W), resized to 299 inside."""
    from torchmetrics.image.fid import FrechetInceptionDistance, NoTrainInceptionV3
    from torchmetrics.image.inception import InceptionScore

    weights = Path(weights).expanduser()
    if not weights.is_file():
        raise FileNotFoundError(
            f"task.inception_weights={weights}: no such file. Download torch-fidelity's Inception-v3 weights "
            f"({INCEPTION_WEIGHTS_URL}) on a machine with internet, or set task.inception_weights=null."
        )
    fid = FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=str(weights))
    logits = NoTrainInceptionV3(
        name="inception-v3-compat", features_list=["logits_unbiased"], feature_extractor_weights_path=str(weights)
    )
    score = InceptionScore(feature=logits)
    for chunk in real.split(batch_size):
        fid.update(chunk, real=True)
    for chunk in fake.split(batch_size):
        fid.update(chunk, real=False)
        score.update(chunk)
    mean, std = score.compute()
    return {"inception_fid": float(fid.compute()), "inception_score": float(mean), "inception_score_std": float(std)}
