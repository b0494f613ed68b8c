import numpy as np
import pytest
import torch

from attention_zoo.data.scenes import COLOURS, INVERSE, SceneObject, captions_of, generate, make_scene, relation


def test_generation_is_a_pure_function_of_seed_split_and_index():
    a, b = generate("train", 5, seed=3), generate("train", 5, seed=3)
    assert all(torch.equal(x.image, y.image) and x.captions == y.captions for x, y in zip(a, b))
    assert not torch.equal(generate("val", 1, seed=3)[0].image, a[0].image)
    assert not torch.equal(generate("train", 1, seed=4)[0].image, a[0].image)
    with pytest.raises(ValueError, match="valid: train, val, test"):
        generate("dev", 1)


def test_objects_are_drawn_inside_their_boxes_without_overlap():
    for i in range(40):
        scene = make_scene(np.random.default_rng(i))
        assert 1 <= len(scene.objects) <= 3 and scene.image.shape == (3, 64, 64) and scene.image.dtype == torch.uint8
        assert len({(o.colour, o.shape) for o in scene.objects}) == len(scene.objects)  # each object is named uniquely
        for k, obj in enumerate(scene.objects):
            x0, y0, x1, y1 = obj.box
            inside = scene.image[:, y0:y1, x0:x1].permute(1, 2, 0).reshape(-1, 3)
            colour = torch.tensor(COLOURS[obj.colour], dtype=torch.uint8)
            assert (inside == colour).all(dim=1).float().mean() > 0.4  # the shape fills much of its box
            for other in scene.objects[k + 1 :]:
                ox0, oy0, ox1, oy1 = other.box
                assert x1 < ox0 or ox1 < x0 or y1 < oy0 or oy1 < y0


def test_captions_say_what_is_true_of_the_positions():
    left, right = SceneObject("red", "circle", (0, 20, 10, 30)), SceneObject("blue", "square", (40, 22, 50, 32))
    top = SceneObject("green", "triangle", (40, 0, 50, 10))
    assert relation(left, right) == "left of" and relation(right, left) == "right of"
    assert relation(top, right) == "above" and relation(right, top) == "below"
    assert captions_of([left]) == ["a red circle"]
    assert captions_of([left, right]) == ["a red circle left of a blue square", "a blue square right of a red circle"]
    three = captions_of([left, right, top])
    assert len(three) == 5 and three[0] == "a red circle left of a blue square and a green triangle"
    for caption in three:  # every reference names all three objects
        assert all(o.phrase in caption for o in (left, right, top))


def test_every_reference_of_generated_scenes_is_consistent():
    for scene in generate("test", 30, seed=1):
        assert 1 <= len(scene.captions) <= 5
        objects = {o.phrase: o for o in scene.objects}
        for caption in scene.captions:
            for rel in INVERSE:
                if f" {rel} " in caption:
                    first, rest = caption.split(f" {rel} ", 1)
                    second = " ".join(rest.split(" and ")[0].split()[:3])
                    assert relation(objects[first], objects[second]) == rel
