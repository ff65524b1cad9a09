"""One reading of a setting's value, whoever wrote it: a YAML file (where `off` and `2e-4`
arrive as a boolean and a string), a `--set`, a UI field or a table cell. Run configs
(`train/config.py`), encoding settings (`labels/encode.py`) and cleaning pipelines
(`data/clean.py`) all convert with these, so they agree on what counts as true and on what
a whole number is."""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap
from pathlib import Path

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


# --- help text ------------------------------------------------------------------------
# A setting's help is written once, as the docstring under its dataclass field (as trl's
# configs carry theirs in the field's metadata):
#
#     max_length: int = 1024
#     """Longest sequence in tokens; longer rows are truncated."""
#
# `field_help` reads it; its Japanese translation is `locales/help/ja.yaml`'s entry under
# the field's dotted path. The CLI's `train --settings` and the UI's field help both show it.


@functools.cache
def field_docs(cls) -> dict[str, str]:
    """Each field of dataclass `cls` -> the docstring written under it ("" when none), with
    its lines joined (a help text is one paragraph)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):  # no source at hand (a frozen build): no help, no crash
        return {}
    body = tree.body[0].body
    docs = {}
    for node, after in zip(body, [*body[1:], None], strict=True):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            text = ""
            value = after.value if isinstance(after, ast.Expr) else None
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                text = " ".join(value.value.split())
            docs[node.target.id] = text
    return docs


@functools.cache
def _translated(lang: str) -> dict[str, str]:
    """`locales/help/<lang>.yaml`: field path -> help in that language."""
    import yaml

    path = Path(__file__).parent / "locales" / "help" / f"{lang}.yaml"
    if not path.is_file():
        return {}
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def field_help(cls, name: str, path: str | None = None, lang: str = "en") -> str:
    """The help of field `name` of dataclass `cls`, in `lang`: the translation kept under
    the field's dotted path (`path`, default `name`) in `locales/help/<lang>.yaml` when
    there is one, else the field's own docstring (English)."""
    if lang != "en":
        text = _translated(lang).get(path or name)
        if text:
            return text
    return field_docs(cls).get(name, "")
