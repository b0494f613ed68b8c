"""results/presets.md is generated from the configs (scripts/presets.py); a preset changed without
regenerating it (`make presets`) fails here, naming the setting that drifted."""

import json

from conftest import REPO, load_script

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
