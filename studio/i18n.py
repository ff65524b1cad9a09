"""Japanese and English strings, kept apart from layout.

Each area (a tab, the CLI, diagnostics) has its own file `studio/locales/<area>.yaml` that
maps a key to its text in both languages side by side:

    title:
      ja: モデル
      en: Model

Keys are used as `<area>.<key>`. Later tabs add their own file; nothing central to edit.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

LANGUAGES = ("ja", "en")
DEFAULT_LANGUAGE = "en"
LOCALES_DIR = Path(__file__).parent / "locales"


@lru_cache(maxsize=1)
def catalog() -> dict[str, dict[str, str]]:
    strings: dict[str, dict[str, str]] = {}
    for path in sorted(LOCALES_DIR.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for key, texts in data.items():
            if not isinstance(key, str):  # YAML 1.1 reads bare yes/no/on/off as booleans
                raise ValueError(f"{path.name}: key {key!r} is not a string; quote it")
            strings[f"{path.stem}.{key}"] = texts
    return strings


def t(key: str, lang: str = DEFAULT_LANGUAGE, **params) -> str:
    texts = catalog().get(key)
    if texts is None:
        return key  # a missing key shows itself instead of crashing the page
    text = texts.get(lang) or texts.get(DEFAULT_LANGUAGE) or key
    return text.format_map(_Params(params)) if params else text


class _Params(dict):
    """Format parameters where an unknown field (or Jinja's `{% ... %}`) stays as written."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def pick_language(accept_language: str | None) -> str:
    """The first supported language in an HTTP Accept-Language header, else English."""
    if not accept_language:
        return DEFAULT_LANGUAGE
    ranked = []
    for i, part in enumerate(accept_language.split(",")):
        tag, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            weight = 0.0
        ranked.append((-weight, i, tag.strip().lower().split("-")[0]))
    for _, _, lang in sorted(ranked):
        if lang in LANGUAGES:
            return lang
    return DEFAULT_LANGUAGE
