"""Mutation testing of the papers' mechanisms, models and decoding (mutmut 2), each source file
against its own fast tests, then a report: results/mutation.md.

    python scripts/mutation.py run [--only attention/cbam.py ...]   # = make mutation; resumable
    python scripts/mutation.py report                                # the page from the cache
    python scripts/mutation.py save                                  # the cache -> its committed record
    python scripts/mutation.py pytest TESTS...                       # the runner mutmut calls (below)

mutmut 2 changes one operator, number, keyword, name or argument at a time, on disk, and runs the
file's tests (stopping at the first failure); a mutant that no test notices "survives". mutmut 2
counts only exit status 1 as a failure: a mutant that breaks the import (pytest's status 2,
"interrupted: errors during collection") would count as a survivor, so mutmut calls the tests
through ``pytest`` below, which turns any failing status into 1. String mutations are off: they
change error-message text, which the tests match only in part. The report lists every survivor with
its diff, and scripts/mutation_equivalent.yaml the survivors judged equivalent (the program computes
the same thing), each with the reason, keyed by the mutated line (mutmut's ids change from one cache
to the next).

mutmut writes each mutant into the file on disk while its tests run: to keep working meanwhile,
run it in a second checkout (`git worktree add ../attention-zoo-mutation`); the tests import the
package from that checkout's src/ (PYTHONPATH), not from the editable install. Do not call mutmut
itself (`mutmut show`, `mutmut results`) on that checkout while it runs: mutmut re-reads the source
file then, finds the mutated line on disk, drops its rows from the cache, and the running mutmut
fails on its next status update (seen 2026-12-03). Read progress from the record with `report`.

The whole run takes longer than a session, and a fresh clone has no ``.mutmut-cache``: the cache is
kept as a committed text record, results/mutation/mutmut-cache.sql (sqlite's own SQL dump; every
mutant's line, status and the hash of the tests it was run against). ``run`` and ``report`` start
from the record when the checkout has no cache; ``run`` writes the record back after each source file
and when it is stopped (SIGTERM or Ctrl-C), so a later session, on any clone, resumes where this one
stopped. mutmut keeps a killed mutant killed, and runs a survivor again once the tests have changed.
``--record PATH`` points a second checkout's run at the main checkout's record.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SRC = "src/attention_zoo"
CACHE = REPO / ".mutmut-cache"
RECORD = REPO / "results" / "mutation" / "mutmut-cache.sql"
EQUIVALENT = Path(__file__).with_name("mutation_equivalent.yaml")
PAGE = REPO / "results" / "mutation.md"
PAPER_DETAILS = "tests/test_paper_details.py"
# source file -> the fast tests that guard it; run in this order (the papers' mechanisms first)
TARGETS = {
    "attention/additive.py": ["tests/test_additive_attention.py", PAPER_DETAILS],
    "attention/scaled_dot_product.py": ["tests/test_scaled_dot_product.py", "tests/test_transformer.py"],
    "attention/generalized.py": ["tests/test_generalized_attention.py", PAPER_DETAILS],
    "attention/positions.py": ["tests/test_positions.py", "tests/test_transformer.py", "tests/test_generalized_attention.py"],
    "attention/squeeze_excitation.py": ["tests/test_cbam.py", PAPER_DETAILS],
    "attention/cbam.py": ["tests/test_cbam.py", PAPER_DETAILS],
    "attention/non_local.py": ["tests/test_non_local.py", PAPER_DETAILS],
    "attention/generalized_2d.py": ["tests/test_generalized_attention_2d.py"],
    "attention/deformable.py": ["tests/test_deformable.py"],
    "attention/sagan.py": ["tests/test_sagan.py"],
    "attention/__init__.py": ["tests/test_cbam.py", "tests/test_resnet.py"],
    "models/resnet.py": ["tests/test_resnet.py", "tests/test_deformable.py", PAPER_DETAILS],
    "models/seq2seq.py": ["tests/test_seq2seq_decoding.py", PAPER_DETAILS],
    "models/rnnsearch.py": ["tests/test_seq2seq_decoding.py", PAPER_DETAILS],
    "models/transformer.py": ["tests/test_transformer.py", PAPER_DETAILS],
    "models/show_attend_tell.py": ["tests/test_show_attend_tell.py", PAPER_DETAILS],
    "models/image_encoder.py": ["tests/test_show_attend_tell.py"],
    "models/sagan.py": ["tests/test_sagan.py"],
    "models/c2d.py": ["tests/test_videos.py"],
    "tasks/decoding.py": ["tests/test_beam_search.py", "tests/test_seq2seq_decoding.py", "tests/test_transformer.py"],
}
DISABLED = "string,fstring,decorator"


def _tested(db: sqlite3.Connection) -> int:
    return db.execute("SELECT count(*) FROM Mutant WHERE status != 'untested'").fetchone()[0]


def restore_cache(record: Path, cache: Path = CACHE) -> bool:
    """Rebuild mutmut's cache from its committed record when this checkout has none, or has a stale one: older
    than the record and with no more tested mutants (the main checkout's cache, while a second checkout's run
    writes the record back with --record). Newer local progress is kept. True if it rebuilt."""
    if not record.exists() or (cache.exists() and cache.stat().st_mtime_ns >= record.stat().st_mtime_ns):
        return False
    with closing(sqlite3.connect(":memory:")) as recorded:
        recorded.executescript(record.read_text())
        if cache.exists():
            with closing(sqlite3.connect(cache)) as local:
                if _tested(local) > _tested(recorded):
                    return False
        partial = cache.with_name(cache.name + ".partial")
        partial.unlink(missing_ok=True)
        with closing(sqlite3.connect(partial)) as db:
            recorded.backup(db)
    partial.replace(cache)
    return True


def save_cache(record: Path, cache: Path = CACHE) -> None:
    """Write mutmut's cache to its text record (written aside, then moved: a stop never leaves half a record)."""
    if not cache.exists():
        raise SystemExit(f"No mutmut cache at {cache}: run `python scripts/mutation.py run` first.")
    db = sqlite3.connect(cache)
    text = "\n".join(db.iterdump()) + "\n"
    db.close()
    record.parent.mkdir(parents=True, exist_ok=True)
    partial = record.with_name(record.name + ".partial")
    partial.write_text(text)
    partial.replace(record)


def wait_or_kill(process: subprocess.Popen, stopped: list, grace_s: float = 30.0) -> bool:
    """Wait for ``process``; once a stop was asked, give it ``grace_s`` to exit, then kill it. True if killed."""
    deadline = None
    while process.poll() is None:
        if stopped and deadline is None:
            deadline = time.monotonic() + grace_s
        if deadline is not None and time.monotonic() > deadline:
            process.kill()
            process.wait()
            return True
        time.sleep(0.5)
    return False


def run(only: list[str], record: Path) -> None:
    if restore_cache(record):
        print(f"resuming from {record}", flush=True)
    stopped = []

    def stop(signum, frame):  # mutmut restores the mutated file on SIGINT; then the record is saved
        stopped.append(signum)
        if child:
            child[0].send_signal(signal.SIGINT)

    child: list[subprocess.Popen] = []
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for target, tests in TARGETS.items():
        if stopped:
            break
        if only and target not in only:
            continue
        runner = f"{sys.executable} {Path(__file__).resolve()} pytest {' '.join(tests)}"
        print(f"== {target}: {' '.join(tests)}", flush=True)
        source = REPO / SRC / target
        original = source.read_bytes()  # mutmut writes each mutant into this file
        child[:] = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "mutmut",
                    "run",
                    "--paths-to-mutate",
                    f"{SRC}/{target}",
                    "--runner",
                    runner,
                    "--tests-dir",
                    "tests",
                    "--disable-mutation-types",
                    DISABLED,
                    "--no-progress",
                    "--simple-output",
                ],
                cwd=REPO,
                env={**os.environ, "PYTHONPATH": str(REPO / "src")},
            )
        ]
        if wait_or_kill(child[0], stopped):  # mutmut 2.5 can hang after SIGINT with a mutant still in the file
            source.write_bytes(original)
        child.clear()
        save_cache(record)
    print(f"{'stopped' if stopped else 'done'}; the cache is saved in {record}", flush=True)


MEMORY_LIMIT = 6 << 30  # bytes of address space per test run: a mutant that loops while appending fails fast


def _limit_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_tests(tests: list[str]) -> int:
    """The fast tests of one source file; 1 for any failure, 0 when they pass (see the docstring).
    A mutant that grows memory without end (``kept -= 1`` in a refill loop) hits MEMORY_LIMIT and
    fails with MemoryError instead of swapping the machine for the length of the timeout."""
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-m", "not slow", "--timeout", "300"]
    return 0 if subprocess.run([*command, *tests], check=False, preexec_fn=_limit_memory).returncode == 0 else 1


def survivors() -> dict[str, list[tuple[int, str]]]:
    """{source file: [(mutant id, diff)]} of the mutants that survived, from mutmut's cache. A survivor
    whose line has since left the source (the code changed after the run) cannot be shown: its diff is
    empty, and the next ``run`` drops it."""
    out: dict[str, list[tuple[int, str]]] = {}
    for mutant_id in _ids("survived"):
        shown = subprocess.run(
            [sys.executable, "-m", "mutmut", "show", str(mutant_id)], cwd=REPO, capture_output=True, text=True, check=False
        )
        diff = shown.stdout if shown.returncode == 0 else ""
        match = re.search(r"--- (\S+)", diff)
        out.setdefault(match.group(1) if match else "line no longer in the source", []).append((mutant_id, diff.strip()))
    return out


def _ids(status: str) -> list[int]:
    text = subprocess.run(
        [sys.executable, "-m", "mutmut", "result-ids", status], cwd=REPO, capture_output=True, text=True, check=False
    ).stdout
    return [int(x) for x in text.split()]


def counts() -> dict[str, dict[str, int]]:
    """Per source file: mutants by status (ok_killed, bad_survived, bad_timeout, ...)."""
    db = sqlite3.connect(CACHE)
    rows = db.execute(
        "SELECT sourcefile.filename, mutant.status, COUNT(*) FROM mutant JOIN line ON mutant.line = line.id "
        "JOIN sourcefile ON line.sourcefile = sourcefile.id GROUP BY sourcefile.filename, mutant.status"
    ).fetchall()
    table: dict[str, dict[str, int]] = {}
    for filename, status, n in rows:
        table.setdefault(filename, {})[status] = n
    return table


def mutated_line(diff: str) -> str:
    """The line a mutant wrote, as scripts/mutation_equivalent.yaml names it ("" for a mutant that cannot be shown)."""
    return next((line[1:].strip() for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")), "")


def tally(by_status: dict[str, int]) -> tuple[int, int, int, int]:
    """(tested, killed, timed out, survived) of one file's tested mutants by mutmut status. mutmut's
    "ok_suspicious" is a mutant the tests failed, only slowly: killed."""
    killed = by_status.get("ok_killed", 0) + by_status.get("ok_suspicious", 0)
    return sum(by_status.values()), killed, by_status.get("bad_timeout", 0), by_status.get("bad_survived", 0)


def report() -> None:
    judged_lines = yaml.safe_load(EQUIVALENT.read_text()) or {}
    equivalent = {f: {entry["mutant"]: entry["why"] for entry in entries} for f, entries in judged_lines.items()}
    lived = survivors()
    lines = [
        "| source file | mutants tested | killed | timed out | survived | judged equivalent | score | not yet tested |",
        "|---|---|---|---|---|---|---|---|",
    ]
    totals = [0, 0, 0, 0, 0]
    for filename, by_status in sorted(counts().items()):
        untested = by_status.pop("untested", 0)
        n, killed, timeout, survived = tally(by_status)
        if n == 0:
            continue
        judged = sum(1 for _, diff in lived.get(filename, []) if mutated_line(diff) in equivalent.get(filename, {}))
        score = (killed + timeout) / max(n - judged, 1)
        lines.append(f"| `{filename}` | {n} | {killed} | {timeout} | {survived} | {judged} | {100 * score:.1f}% | {untested} |")
        for i, value in enumerate((n, killed, timeout, survived, judged)):
            totals[i] += value
    n, killed, timeout, survived, judged = totals
    lines.append(
        f"| all tested | {n} | {killed} | {timeout} | {survived} | {judged} "
        f"| {100 * (killed + timeout) / max(n - judged, 1):.1f}% | |"
    )
    body = [
        "# Mutation testing",
        "",
        "Generated by `make mutation` (`scripts/mutation.py`, mutmut 2.5): every source file of `attention/`,",
        "`models/` and `tasks/decoding.py`, mutated one change at a time (operators, numbers, keywords, names,",
        "arguments; not strings), against its own fast tests. Score = (killed + timed out) / (mutants - judged",
        "equivalent). A timeout counts as killed: the mutant made a test hang; so does a mutant the tests",
        'failed slowly (mutmut\'s "suspicious").',
        "",
        *lines,
        "",
        "## Survivors",
        "",
    ]
    for filename, items in sorted(lived.items()):
        body.append(f"### `{filename}`")
        for mutant_id, diff in items:
            if not diff:
                body.append(f"- mutant {mutant_id}: its line has left the source since it ran; the next `make mutation` drops it")
                continue
            reason = equivalent.get(filename, {}).get(mutated_line(diff))
            body.append(
                f"- mutant {mutant_id}: " + (f"**equivalent**: {reason}" if reason else "**not killed**: a gap in the tests")
            )
            body.append("```diff\n" + "\n".join(diff.splitlines()[2:]) + "\n```")
        body.append("")
    PAGE.write_text("\n".join(body) + "\n")
    print(f"wrote {PAGE}: {killed + timeout} of {n - judged} non-equivalent mutants killed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run")
    run_parser.add_argument("--only", nargs="*", default=[], choices=sorted(TARGETS), metavar="FILE")
    for record_parser in (run_parser, sub.add_parser("report"), sub.add_parser("save")):
        record_parser.add_argument("--record", type=Path, default=RECORD, help=f"the cache's text record (default {RECORD})")
    sub.add_parser("pytest").add_argument("tests", nargs="+")
    args = parser.parse_args()
    if args.command == "run":
        run(args.only, args.record)
    elif args.command == "pytest":
        sys.exit(run_tests(args.tests))
    elif args.command == "save":
        save_cache(args.record)
    else:
        restore_cache(args.record)
        report()


if __name__ == "__main__":
    main()
