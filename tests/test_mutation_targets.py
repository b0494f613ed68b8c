"""`make mutation` reaches every mechanism: each source file of attention/ and models/ (and the
decoders) is a target of scripts/mutation.py, with test files that exist; and its cache survives a
fresh clone through its committed text record."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

from conftest import REPO, load_script

mutation = load_script("mutation", "mutation_script")


def test_every_mechanism_file_is_a_mutation_target_with_its_tests():
    src = REPO / mutation.SRC
    files = {
        p.relative_to(src).as_posix()
        for folder in ("attention", "models")
        for p in (src / folder).glob("*.py")
        if p.read_text().count("\n") > 1  # not a package docstring alone
    }
    assert files | {"tasks/decoding.py"} == set(mutation.TARGETS)
    missing = [test for tests in mutation.TARGETS.values() for test in tests if not (REPO / test).is_file()]
    assert not missing, missing


def test_a_mutant_killed_slowly_counts_as_killed():
    # mutmut's "ok_suspicious": the tests failed but took long; only "bad_survived" is a survivor.
    by_status = {"ok_killed": 3, "ok_suspicious": 2, "bad_timeout": 1, "bad_survived": 1}
    assert mutation.tally(by_status) == (7, 5, 1, 1)


def _cache(path, rows):
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE mutant (id INTEGER PRIMARY KEY, line TEXT, status TEXT)")
    db.executemany("INSERT INTO mutant (line, status) VALUES (?, ?)", rows)
    db.commit()
    db.close()


def _rows(path):
    db = sqlite3.connect(path)
    rows = db.execute("SELECT line, status FROM mutant ORDER BY id").fetchall()
    db.close()
    return rows


def test_the_mutation_cache_round_trips_through_its_record(tmp_path):
    cache, record = tmp_path / ".mutmut-cache", tmp_path / "results" / "mutation" / "mutmut-cache.sql"
    rows = [("x = a + b", "ok_killed"), ("y = 'it''s'", "bad_survived"), ("z = 1", "untested")]
    _cache(cache, rows)
    mutation.save_cache(record, cache)
    assert not list(record.parent.glob("*.partial"))
    cache.unlink()
    assert mutation.restore_cache(record, cache)  # a fresh clone: the cache comes back from the record
    assert _rows(cache) == rows


def test_a_checkout_with_its_own_cache_keeps_it(tmp_path):
    cache, record = tmp_path / ".mutmut-cache", tmp_path / "record.sql"
    _cache(cache, [("a", "ok_killed")])
    mutation.save_cache(record, cache)
    _cache(other := tmp_path / "other-cache", [("b", "bad_survived")])
    os.utime(other, ns=(record.stat().st_mtime_ns + 10**9,) * 2)
    assert not mutation.restore_cache(record, other)  # newer local progress is never overwritten
    assert _rows(other) == [("b", "bad_survived")]


def test_a_cache_older_than_the_record_is_rebuilt_from_it(tmp_path):
    """The main checkout's cache goes stale while a second checkout's run writes the record back (--record)."""
    stale, record = tmp_path / ".mutmut-cache", tmp_path / "record.sql"
    _cache(newer := tmp_path / "newer", [("a", "ok_killed")])
    mutation.save_cache(record, newer)
    _cache(stale, [("a", "bad_survived")])
    os.utime(stale, ns=(record.stat().st_mtime_ns - 10**9,) * 2)
    assert mutation.restore_cache(record, stale)
    assert _rows(stale) == [("a", "ok_killed")]


def test_a_cache_with_more_tested_mutants_than_an_older_record_is_kept(tmp_path):
    """Checking out an older commit rewrites the record file (a newer mtime) with less progress than the cache."""
    cache, record = tmp_path / ".mutmut-cache", tmp_path / "record.sql"
    _cache(old := tmp_path / "old", [("a", "ok_killed"), ("b", "untested")])
    mutation.save_cache(record, old)
    _cache(cache, [("a", "ok_killed"), ("b", "bad_survived")])
    os.utime(cache, ns=(record.stat().st_mtime_ns - 10**9,) * 2)
    assert not mutation.restore_cache(record, cache)
    assert _rows(cache) == [("a", "ok_killed"), ("b", "bad_survived")]


def test_a_stopped_run_kills_a_mutmut_that_hangs_after_its_interrupt():
    """mutmut 2.5 can hang after SIGINT (seen 2026-12-03); the runner gives it a grace period, then kills it."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    started = time.monotonic()
    assert mutation.wait_or_kill(process, stopped=[signal.SIGTERM], grace_s=0.5)
    assert process.returncode is not None and time.monotonic() - started < 10
