"""Translation scores against the sacrebleu command line, BLEU by length, and the alignment figure."""

import subprocess
import sys

import pytest
import torch
from sacrebleu.metrics import BLEU

from attention_zoo.data.text import EOS, WordEncoder
from attention_zoo.metrics.bleu import bleu_by_length, moses_tokenized_lowercase, translation_scores
from attention_zoo.viz.attention import plot_alignment

REFERENCES = [
    "A man in an orange hat starring at something.",
    "A Boston Terrier is running on lush green grass in front of a white fence.",
    "People are fixing the roof of a house.",
    "A group of people standing in front of an igloo.",
    "A guy works on a building.",
]
HYPOTHESES = [
    "A man in an orange hat looks at something.",
    "A Boston terrier runs across the green grass in front of a white fence.",
    "People repair the roof of a house.",
    "A group of people stand in front of an igloo.",
    "A guy is working on a building.",
]


def sacrebleu_cli(tmp_path, hypotheses, references, *options) -> float:
    """The score the ``sacrebleu`` command prints for these files (4 decimals)."""
    ref, hyp = tmp_path / "ref.txt", tmp_path / "hyp.txt"
    ref.write_text("\n".join(references) + "\n")
    hyp.write_text("\n".join(hypotheses) + "\n")
    out = subprocess.run(
        [sys.executable, "-m", "sacrebleu", str(ref), "-i", str(hyp), "-b", "-w", "4", *options],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip())


def test_our_scores_equal_the_sacrebleu_command_line_on_the_same_files(tmp_path):
    ours = translation_scores(HYPOTHESES, REFERENCES, "en")
    assert ours["bleu"] == pytest.approx(sacrebleu_cli(tmp_path, HYPOTHESES, REFERENCES), abs=5e-5)
    assert ours["chrf"] == pytest.approx(sacrebleu_cli(tmp_path, HYPOTHESES, REFERENCES, "-m", "chrf"), abs=5e-5)
    tokenized = sacrebleu_cli(
        tmp_path, moses_tokenized_lowercase(HYPOTHESES, "en"), moses_tokenized_lowercase(REFERENCES, "en"), "-tok", "none", "-lc"
    )
    assert ours["tok_bleu"] == pytest.approx(tokenized, abs=5e-5)
    assert ours["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")


def test_bleu_by_length_scores_each_bucket_alone():
    lengths = [9, 16, 8, 10, 6]
    buckets = bleu_by_length(HYPOTHESES, REFERENCES, lengths, [1, 9, 12, 20])
    assert [(b["min_len"], b["max_len"], b["sentences"]) for b in buckets] == [(1, 8, 2), (9, 11, 2), (12, 19, 1), (20, None, 0)]
    for bucket, rows in zip(buckets, ([2, 4], [0, 3], [1])):
        expected = BLEU().corpus_score([HYPOTHESES[i] for i in rows], [[REFERENCES[i] for i in rows]]).score
        assert bucket["bleu"] == pytest.approx(expected)
    assert buckets[3]["bleu"] is None  # an empty bucket has no score, not 0
    with pytest.raises(ValueError, match="strictly increasing"):
        bleu_by_length(HYPOTHESES, REFERENCES, lengths, [1, 12, 9])


def test_plot_alignment_draws_a_png_and_checks_the_labels(tmp_path):
    weights = torch.softmax(torch.randn(4, 3), dim=-1)  # (T, S)
    path = plot_alignment(weights, ["ein", "Hund", "."], ["a", "dog", ".", "<eos>"], tmp_path / "sub" / "a.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match=r"weights \(4, 3\) do not match 4 target x 2 source tokens"):
        plot_alignment(weights, ["ein", "Hund"], ["a", "dog", ".", "<eos>"], tmp_path / "b.png")


def test_token_strings_label_every_id_including_specials():
    enc = WordEncoder.train("en", ["a dog runs .", "a cat runs ."], lowercase=False, min_freq=1)
    ids = enc.encode("a dog runs .") + [EOS]
    assert enc.token_strings(ids) == ["a", "dog", "runs", ".", "<eos>"]
