"""The one shape of an invalid-option error: the setting, its value and the valid options."""

from __future__ import annotations

from collections.abc import Iterable


def check_choice(setting: str, value, valid: Iterable) -> None:
    """Raise ``ValueError("Unknown <setting> <value>; valid: a, b.")`` unless ``value`` is valid."""
    valid = list(valid)
    if value not in valid:
        raise ValueError(f"Unknown {setting} {value!r}; valid: {', '.join(map(str, valid))}.")
