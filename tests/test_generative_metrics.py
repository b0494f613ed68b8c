"""FID and precision/recall in a feature space, on sets whose answer is known."""

import numpy as np
import pytest
import torch
from scipy import linalg

from attention_zoo.metrics.generative import feature_space_scores


def fid_by_the_formula(a: torch.Tensor, b: torch.Tensor) -> float:
    mu_a, mu_b = a.double().mean(0).numpy(), b.double().mean(0).numpy()
    cov_a, cov_b = np.cov(a.double().numpy(), rowvar=False), np.cov(b.double().numpy(), rowvar=False)
    root = linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


def test_identical_sets_score_zero_and_full_precision_and_recall():
    real = torch.randn(400, 6, generator=torch.Generator().manual_seed(0))
    scores = feature_space_scores(real, real.clone())
    assert scores["fid"] == pytest.approx(0.0, abs=1e-6)
    assert scores["precision"] == scores["recall"] == 1.0


def test_fid_equals_its_formula_and_grows_with_the_shift():
    gen = torch.Generator().manual_seed(1)
    real = torch.randn(500, 5, generator=gen)
    fakes = [torch.randn(500, 5, generator=gen) * 1.3 + shift for shift in (0.0, 0.5, 2.0)]
    scores = [feature_space_scores(real, fake) for fake in fakes]
    for fake, score in zip(fakes, scores):
        assert score["fid"] == pytest.approx(fid_by_the_formula(real, fake), rel=1e-4)
    assert scores[0]["fid"] < scores[1]["fid"] < scores[2]["fid"]
    assert scores[2]["precision"] < scores[0]["precision"] and scores[2]["recall"] < scores[0]["recall"]


def test_precision_and_recall_tell_a_collapsed_generator_from_a_wrong_one():
    gen = torch.Generator().manual_seed(2)
    real = torch.randn(600, 4, generator=gen)
    collapsed = real[:50].repeat(12, 1) + 1e-3 * torch.randn(600, 4, generator=gen)  # real-looking, little variety
    elsewhere = torch.randn(600, 4, generator=gen) + 10.0
    mode = feature_space_scores(real, collapsed)
    assert mode["precision"] > 0.95 and mode["recall"] < 0.5
    far = feature_space_scores(real, elsewhere)
    assert far["precision"] == far["recall"] == 0.0


def test_features_of_different_sizes_are_refused():
    with pytest.raises(ValueError, match=r"\(N, D\) and \(M, D\)"):
        feature_space_scores(torch.zeros(3, 4), torch.zeros(3, 5))


def test_inception_metrics_read_a_local_weights_file(inception_file):
    from attention_zoo.metrics.generative import inception_scores

    torch.manual_seed(0)
    real = torch.randint(0, 256, (12, 3, 32, 32), dtype=torch.uint8)
    same = inception_scores(real, real, inception_file, batch_size=6)
    assert abs(same["inception_fid"]) < 1e-2 and 1.0 <= same["inception_score"] < 1001  # exp(KL) over 1008 logits
    truncated = inception_file.with_name("truncated.pth")  # the network comes from the file: a wrong one fails
    state = torch.load(inception_file)
    torch.save({k: v for k, v in state.items() if not k.startswith("fc.")}, truncated)
    with pytest.raises(RuntimeError, match="Missing key"):
        inception_scores(real, real, truncated)


def test_missing_inception_weights_say_where_to_get_them(tmp_path):
    from attention_zoo.metrics.generative import inception_scores

    images = torch.zeros(2, 3, 32, 32, dtype=torch.uint8)
    with pytest.raises(FileNotFoundError, match="torch-fidelity's Inception-v3 weights"):
        inception_scores(images, images, tmp_path / "missing.pth")
