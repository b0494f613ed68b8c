"""Runs started side by side (grids, sweeps, launchers) share the derived-data cache: the first
builds each cached file under a lock, the others wait for it; nobody deletes a file another live
process is still writing."""

import json
import os
import subprocess
import sys

import torch

from attention_zoo.engine import checkpoint
from conftest import REPO, write_cifar_archive
from multi30k_corpus import write_corpus

BUILD = """
import json, sys
from attention_zoo.data.cifar import CifarConfig, load_cifar
from attention_zoo.data.translation import TranslationConfig, TranslationData
root, cache = sys.argv[1], sys.argv[2]
train, test = load_cifar(CifarConfig(name="cifar10", root=root, cache_dir=cache, download=False))
text = TranslationData(TranslationConfig(root=root, cache_dir=cache, download=False, min_freq=1), seed=0)
print(json.dumps({"images": int(train.images.sum()), "vocab": text.src_encoder.itos}))
"""


def _data_root(tmp_path):
    root = write_cifar_archive(tmp_path / "data", {"train": 40, "test": 10}, work=tmp_path / "src")
    write_corpus(root)
    return root


def test_two_processes_build_the_same_caches_at_once_and_both_finish(tmp_path):
    root, cache = _data_root(tmp_path), tmp_path / "cache"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", BUILD, str(root), str(cache)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (_, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-3000:]
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert results[0] == results[1] == results[2]
    assert not list(cache.glob("*.partial")) and not list(cache.glob(".tmp-*"))
    assert (cache / "cifar10-jpeg-decoded.pt").is_file() and len(list(cache.glob("multi30k-*.pt"))) == 1


def test_a_live_writers_temporary_file_is_kept_and_a_dead_ones_removed(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".tmp-last.pt.{sleeper.pid}.0a1b2c3d"
        dead = tmp_path / ".tmp-last.pt.999999999.0a1b2c3d"  # no such process
        old_style = tmp_path / ".tmp-best.pt"
        for path in (live, dead, old_style):
            path.write_bytes(b"half")
        checkpoint.save_atomic({"x": torch.ones(2)}, tmp_path / "last.pt")
        assert live.exists() and not dead.exists() and not old_style.exists()
        assert torch.equal(checkpoint.load(tmp_path / "last.pt")["x"], torch.ones(2))
    finally:
        sleeper.kill()
