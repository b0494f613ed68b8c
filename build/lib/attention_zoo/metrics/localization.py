"""Attention localization on the generated scenes set: does the captioner look at what it names?

For each word of a generated caption that names an object (a colour or a shape word of a
"<colour> <shape>" phrase), take the attention weights α_t of the step that emitted it, find
the grid cell with the largest weight, and count a hit when that cell's centre, in image
pixels, falls inside the named object's box. A phrase naming an object that is not in the
image counts as misses (the model cannot look at what is not there). The score is hits /
object words, over all test images.

``lag=1`` scores the attention of the step *before* each object word instead (for the colour
word, the step that emitted the article "a"). α_t is computed from h_{t-1} and its context
enters the LSTM state, so a decoder can read an object one step before it names it; the
lagged score tells such a look-ahead apart from attention that never finds the object.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import torch

from attention_zoo.data.scenes import COLOURS, SHAPES, SceneObject


def object_word_hits(
    words: Sequence[str], attention: torch.Tensor, objects: Sequence[SceneObject], image_size: int, lag: int = 0
) -> tuple[int, int]:
    """(hits, object words) for one caption, scoring the attention ``lag`` steps before each
    object word. attention: (≥ len(words), L) on a square grid."""
    side = math.isqrt(attention.shape[-1])
    if side * side != attention.shape[-1]:
        raise ValueError(f"Attention over {attention.shape[-1]} locations is not a square grid.")
    cell = image_size / side
    by_name = {(o.colour, o.shape): o for o in objects}
    hits = total = 0
    for t, word in enumerate(words):
        if word in COLOURS and t + 1 < len(words) and words[t + 1] in SHAPES:
            named = (word, words[t + 1])
        elif word in SHAPES and t > 0 and words[t - 1] in COLOURS:
            named = (words[t - 1], word)
        else:
            continue
        total += 1
        obj = by_name.get(named)
        if obj is None or t < lag:
            continue
        row, col = divmod(int(attention[t - lag].argmax()), side)
        x, y = (col + 0.5) * cell, (row + 0.5) * cell
        x0, y0, x1, y1 = obj.box
        hits += int(x0 <= x < x1 and y0 <= y < y1)
    return hits, total


def named_objects(words: Sequence[str], objects: Sequence[SceneObject]) -> tuple[int, int, int]:
    """(phrases naming an object of the image, "<colour> <shape>" phrases, image objects named)
    for one caption: the caption's object precision and recall, which bound its localization."""
    present = {(o.colour, o.shape) for o in objects}
    phrases = [(a, b) for a, b in zip(words, words[1:]) if a in COLOURS and b in SHAPES]
    return sum(p in present for p in phrases), len(phrases), len(present & set(phrases))


class SceneCaptionScores:
    """Accumulates, over a split, localization (lag 0 and 1) and object precision / recall."""

    def __init__(self, image_size: int):
        self.image_size, self.counts = image_size, Counter()

    def add(self, words: Sequence[str], attention: torch.Tensor, objects: Sequence[SceneObject]) -> None:
        hits, object_words = object_word_hits(words, attention, objects, self.image_size)
        hits_previous_step = object_word_hits(words, attention, objects, self.image_size, lag=1)[0]
        right, phrases, named = named_objects(words, objects)
        self.counts.update(
            hits=hits,
            hits_previous_step=hits_previous_step,
            object_words=object_words,
            right=right,
            phrases=phrases,
            named=named,
            objects=len(objects),
        )

    def summary(self) -> dict[str, float]:
        c = self.counts
        return {
            "localization": c["hits"] / c["object_words"] if c["object_words"] else 0.0,
            "localization_previous_step": c["hits_previous_step"] / c["object_words"] if c["object_words"] else 0.0,
            "object_precision": c["right"] / c["phrases"] if c["phrases"] else 0.0,
            "object_recall": c["named"] / c["objects"] if c["objects"] else 0.0,
        }
