"""Generated sections of a markdown page: what lies between a start and an end marker is replaced,
the text around them (a page's hand-written reading) is kept. Used by every script that writes a
results page (scripts/results.py, presets.py, preset_smoke.py; attention_zoo/search_record.py)."""

from __future__ import annotations

from pathlib import Path


def fill_between(text: str, start: str, end: str, body: str, page: Path) -> str:
    """``text`` with what lies between the markers replaced by ``body`` (which ends with its own newline)."""
    if start not in text or end not in text:
        raise SystemExit(f"{page} needs the markers {start} and {end} around its table.")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}{end}{tail}"


def write_section(page: Path, start: str, end: str, body: str, title: str) -> None:
    """Fill the markers of ``page``; a page that does not exist yet gets ``title`` and the markers."""
    text = page.read_text() if page.exists() else f"# {title}\n\n{start}\n{end}\n"
    page.write_text(fill_between(text, start, end, body, page))
