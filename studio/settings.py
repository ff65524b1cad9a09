"""One reading of a setting's value, whoever wrote it: a YAML file (where `off` and `2e-4`
arrive as a boolean and a string), a `--set`, a UI field or a table cell. Run configs
(`train/config.py`), encoding settings (`labels/encode.py`) and cleaning pipelines
(`data/clean.py`) all convert with these, so they agree on what counts as true and on what
a whole number is."""

from __future__ import annotations

from studio.errors import InputError

TRUE_WORDS = frozenset({"true", "yes", "on", "1", "✓"})
FALSE_WORDS = frozenset({"false", "no", "off", "0"})


def as_bool(value, name: str = "value") -> bool:
    """True or false: a boolean, 0 or 1, or one of the words (any case). Anything else is
    refused (a ValueError naming the setting) instead of silently read as false."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise InputError(
        f"{name} must be true or false (got {value!r})",
        code="not_true_false",
        field=name,
        value=value,
    )


def as_int(value, name: str = "value") -> int:
    """A whole number: an integer, or a float or text that is one (`512`, `512.0`, `"512"`);
    not a boolean, not 512.5."""
    if isinstance(value, bool):
        raise InputError(
            f"{name} must be a whole number (got {value!r})",
            code="not_whole_number",
            field=name,
            value=value,
        )
    if isinstance(value, int):
        return value
    if isinstance(value, float | str):
        try:
            number = float(value)
        except (ValueError, OverflowError):
            number = None
        if number is not None and number.is_integer():
            return int(number)
    raise InputError(
        f"{name} must be a whole number (got {value!r})",
        code="not_whole_number",
        field=name,
        value=value,
    )
