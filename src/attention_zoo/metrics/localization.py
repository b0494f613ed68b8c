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
from typing import Sequence

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
