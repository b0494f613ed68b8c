"""results/presets.md is generated from the configs (scripts/presets.py); a preset changed without
regenerating it (`make presets`) fails here, naming the setting that drifted."""

import json

import pytest

from conftest import REPO, SMOKE, load_script

presets = load_script("presets")


def test_every_preset_in_the_committed_table_matches_its_config():
    committed = json.loads((REPO / "results" / "presets.json").read_text())
    recomputed = presets.build_table(with_data=False)
    assert committed.keys() == recomputed.keys()
    for group, table in recomputed.items():
        assert committed[group]["presets"].keys() == table["presets"].keys(), group
        for preset, row in table["presets"].items():
            for field in presets.CONFIG_FIELDS:
                assert committed[group]["presets"][preset][field] == row[field], (
                    f"{preset}: {field} is now {row[field]!r}, the committed results/presets.md says "
                    f"{committed[group]['presets'][preset][field]!r}; run `make presets`."
                )


def test_every_experiment_preset_is_in_the_table():
    listed = {p for table in presets.build_table(with_data=False).values() for p in table["presets"]}
    assert listed == {path.stem for path in (REPO / "configs" / "experiment").glob("*.yaml")}


def test_data_measurements_come_from_the_real_batcher(tmp_path):
    """On a tiny corpus: the measured fields of a translation preset are those of its data module."""
    from multi30k_corpus import write_corpus

    write_corpus(tmp_path)
    cfg = presets.compose_preset(
        "rnnsearch",
        [
            f"data.root={tmp_path}",
            f"paths.cache_dir={tmp_path / 'cache'}",
            "data.download=false",
            "data.min_freq=1",
            "data.max_sentences=5",
        ],
    )
    fields = presets.data_fields(cfg)
    assert fields["steps_per_epoch"] == "4"  # 18 training pairs, at most 5 a batch
    assert fields["steps"] == f"{4 * 20:,}" and fields["batch_measured"].startswith("4 sentences")


def test_smoke_table_shows_both_losses_of_a_gan(tmp_path, monkeypatch):
    """A GAN's generator loss alone says nothing about learning (it swings in sign as D and G trade
    places): results/presets_smoke.md shows the discriminator's loss beside it."""
    smoke = load_script("preset_smoke")
    monkeypatch.setattr(smoke, "OUT", tmp_path)
    monkeypatch.setattr(smoke, "PAGE", tmp_path / "page.md")
    record = {"overrides": [], "steps": 4, "parameters": 2_000_000, "loss_first": -1.5, "loss_last": 0.25}
    record |= {"all_finite": True, "s_per_step": 2.0, "updates_planned": 3600}
    (tmp_path / "classifier.json").write_text(json.dumps({**record, "experiment": "classifier"}))
    gan = {**record, "experiment": "gan", "d_loss_first": 2.0, "d_loss_last": 1.125}
    (tmp_path / "gan.json").write_text(json.dumps(gan))
    smoke.table()
    rows = {line.split("|")[1].strip(): line for line in (tmp_path / "page.md").read_text().splitlines() if "`" in line}
    assert "| -1.500 → 0.250 |" in rows["`classifier`"]
    assert "| G -1.500 → 0.250; D 2.000 → 1.125 |" in rows["`gan`"]
    assert "| 2.00 | 3,600 | 2.0 h |" in rows["`gan`"]


def test_smoke_of_a_classifier_records_its_loss_and_no_discriminator(tiny_data_root, tmp_path, monkeypatch):
    """scripts/preset_smoke.py end to end on tiny data: one loss per update, finite, and no GAN fields."""
    monkeypatch.setenv("ATTN_ZOO_DATA", str(tiny_data_root))
    monkeypatch.setenv("ATTN_ZOO_CACHE", str(tmp_path / "cache"))
    smoke = load_script("preset_smoke")
    record = smoke.smoke("resnet_cifar", 3, [o for o in SMOKE if not o.startswith("experiment=")], tmp_path)
    assert len(record["losses"]) == 3 and record["all_finite"]
    assert record["loss_first"] == pytest.approx(record["losses"][0], abs=1e-4) and "d_loss_first" not in record
