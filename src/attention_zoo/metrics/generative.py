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
    pr = prdc.compute_prdc(real_features=real.double().numpy(), fake_features=fake.double().numpy(), nearest_k=nearest_k)
    return {"fid": float(fid.compute()), "precision": float(pr["precision"]), "recall": float(pr["recall"])}
