"""Run presets: readable YAML files in `presets/`, each a run config plus a description.

description: {ja: ..., en: ...}
model: tsumugi-tiny
method: lora
...
"""

from __future__ import annotations

from pathlib import Path

import yaml

from studio.paths import PRESETS_DIR
from studio.safety import safe_name
from studio.train.config import ConfigError, RunConfig, apply_sets, read_config_file


def preset_path(name: str) -> Path:
    path = PRESETS_DIR / f"{safe_name(name)}.yaml"
    if not path.is_file():
        known = ", ".join(list_presets()) or "none"
        raise ConfigError(f"no preset named {name!r} (presets: {known})")
    return path


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def describe(name: str, lang: str = "en") -> str:
    data = yaml.safe_load(preset_path(name).read_text(encoding="utf-8")) or {}
    text = data.get("description") or ""
    if isinstance(text, dict):
        text = text.get(lang) or text.get("en") or ""
    return str(text).strip()


def config_source(spec: str | Path) -> tuple[Path, str | None]:
    """A config file path, or a preset name -> (file, preset name or None)."""
    path = Path(spec).expanduser()
    if path.is_file():
        return path, path.stem if path.parent.resolve() == PRESETS_DIR.resolve() else None
    if path.suffix in (".yaml", ".yml") or "/" in str(spec):
        raise ConfigError(f"no config file at {spec}")
    return preset_path(str(spec)), str(spec)


def load(spec: str | Path, sets: list[str] | None = None) -> tuple[RunConfig, str | None]:
    path, preset = config_source(spec)
    data = read_config_file(path)
    config = RunConfig.from_dict(apply_sets(data, sets or []))
    if preset and not config.name:
        config.name = preset
    return config, preset
