"""A generated captioning set whose ground truth says where each object is.

Each image (64x64 by default) holds 1-3 shapes (circle, square, triangle) of distinct
(colour, shape) pairs at random, non-overlapping positions on a dark noisy background. Its
captions come from a small grammar:

    1 object:   "a red circle"
    2 objects:  "a red circle above a blue square"    (above | below | left of | right of,
                                                      read off the objects' real positions)
    3 objects:  "a red circle above a blue square and a green triangle"

All phrasings that are true of the image are its references (both orders of a pair with the
inverse relation; for three objects, each pair with the third listed last), at most
``max_references``; the first is the training caption of the image. Every object's box is kept,
so a captioner's attention can be checked against where the object really is: the localization
score of Show-Attend-Tell on this set (tasks/captioning.py).

Generation is a pure function of (seed, split, index): the same seed gives the same data set
on any machine, and nothing is downloaded or stored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from attention_zoo.choices import check_choice

COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (50, 90, 230),
    "yellow": (230, 210, 40),
    "white": (235, 235, 235),
}
SHAPES = ("circle", "square", "triangle")
INVERSE = {"above": "below", "below": "above", "left of": "right of", "right of": "left of"}
SPLIT_OFFSET = {"train": 0, "val": 1, "test": 2}


@dataclass
class SceneObject:
    colour: str
    shape: str
    box: tuple[int, int, int, int]  # (x0, y0, x1, y1) in pixels, x1/y1 exclusive

    @property
    def phrase(self) -> str:
        return f"a {self.colour} {self.shape}"

    @property
    def centre(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.box
        return (x0 + x1) / 2, (y0 + y1) / 2


@dataclass
class Scene:
    image: torch.Tensor  # (3, H, W) uint8
    objects: list[SceneObject]
    captions: list[str]  # every true phrasing; captions[0] is the training caption


def relation(a: SceneObject, b: SceneObject) -> str:
    """Where ``a`` is with respect to ``b``, along the axis on which they are further apart."""
    (ax, ay), (bx, by) = a.centre, b.centre
    if abs(ax - bx) > abs(ay - by):
        return "left of" if ax < bx else "right of"
    return "above" if ay < by else "below"


def captions_of(objects: list[SceneObject], max_references: int = 5) -> list[str]:
    if len(objects) == 1:
        return [objects[0].phrase]
    pairs = (
        [(objects[0], objects[1], None)]
        if len(objects) == 2
        else [(objects[i], objects[j], objects[k]) for i, j, k in ((0, 1, 2), (0, 2, 1), (1, 2, 0))]
    )
    captions = []
    for a, b, rest in pairs:
        tail = f" and {rest.phrase}" if rest is not None else ""
        captions.append(f"{a.phrase} {relation(a, b)} {b.phrase}{tail}")
        captions.append(f"{b.phrase} {relation(b, a)} {a.phrase}{tail}")
    return captions[:max_references]


def _draw(canvas: np.ndarray, obj: SceneObject) -> None:
    x0, y0, x1, y1 = obj.box
    size = x1 - x0
    yy, xx = np.mgrid[0:size, 0:size]
    if obj.shape == "square":
        mask = np.ones((size, size), dtype=bool)
    elif obj.shape == "circle":
        r = (size - 1) / 2
        mask = (yy - r) ** 2 + (xx - r) ** 2 <= r**2
    else:  # an upward triangle filling the box
        mask = np.abs(xx - (size - 1) / 2) <= yy / 2
    canvas[y0:y1, x0:x1][mask] = COLOURS[obj.colour]


def make_scene(rng: np.random.Generator, image_size: int = 64, max_objects: int = 3, max_references: int = 5) -> Scene:
    n = int(rng.integers(1, max_objects + 1))
    kinds = [(c, s) for c in COLOURS for s in SHAPES]
    chosen = rng.choice(len(kinds), size=n, replace=False)
    canvas = rng.integers(0, 40, size=(image_size, image_size, 3)).astype(np.uint8)
    objects: list[SceneObject] = []
    for k in chosen:
        for _ in range(100):  # rejection sampling of a box that overlaps no earlier one (1-pixel margin)
            size = int(rng.integers(image_size // 5, image_size // 3))
            x0, y0 = (int(v) for v in rng.integers(0, image_size - size, size=2))
            box = (x0, y0, x0 + size, y0 + size)
            if all(box[0] > o.box[2] or box[2] < o.box[0] or box[1] > o.box[3] or box[3] < o.box[1] for o in objects):
                break
        else:
            continue  # no room: fewer objects in this image
        objects.append(SceneObject(*kinds[k], box))
    for obj in objects:
        _draw(canvas, obj)
    image = torch.from_numpy(canvas).permute(2, 0, 1).contiguous()
    return Scene(image, objects, captions_of(objects, max_references))


def generate(split: str, count: int, seed: int = 0, image_size: int = 64, max_objects: int = 3) -> list[Scene]:
    check_choice("scenes split", split, SPLIT_OFFSET)
    return [make_scene(np.random.default_rng([seed, SPLIT_OFFSET[split], i]), image_size, max_objects) for i in range(count)]
