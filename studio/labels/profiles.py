"""Named encoding-settings profiles, saved as readable YAML in `workspace/profiles/`.

A one-click fix never edits a profile in place: it saves a new one (`<name>-fixed`,
`<name>-fixed-2`, ...) whose `based_on` names the profile it came from.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from studio.errors import StudioError
from studio.fsutil import atomic_write_text
from studio.labels.encode import EncodingSettings
from studio.safety import YamlRefused, load_yaml, safe_name

DEFAULT_PROFILE = "default"


class ProfileError(StudioError, ValueError):
    pass


def profiles_dir(ws) -> Path:
    return ws.root / "profiles"


def read_settings_file(path: Path) -> tuple[EncodingSettings, dict]:
    """Settings from a YAML file: either the fields at the top level or under `encoding:`."""
    try:
        data = load_yaml(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError, YamlRefused) as exc:
        raise ProfileError(f"cannot read settings from {Path(path).name}: {exc}") from exc
    if not isinstance(data, dict):
        raise ProfileError(f"{Path(path).name} must hold a mapping of settings")
    meta = {k: data.pop(k) for k in ("based_on", "note", "fixes") if k in data}
    fields = data.get("encoding", data)
    try:
        return EncodingSettings.from_dict(fields), meta
    except (TypeError, ValueError) as exc:
        raise ProfileError(f"{Path(path).name}: {exc}") from exc


def list_profiles(ws) -> list[str]:
    folder = profiles_dir(ws)
    names = sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []
    return [DEFAULT_PROFILE] + [n for n in names if n != DEFAULT_PROFILE]


def load_profile(ws, name: str) -> EncodingSettings:
    if (
        name in ("", DEFAULT_PROFILE)
        and not (profiles_dir(ws) / f"{DEFAULT_PROFILE}.yaml").exists()
    ):
        return EncodingSettings()
    path = profiles_dir(ws) / f"{safe_name(name)}.yaml"
    if not path.is_file():
        raise ProfileError(f"no settings profile named {name!r}")
    return read_settings_file(path)[0]


def _free_name(ws, base: str) -> str:
    name, n = base, 2
    while (profiles_dir(ws) / f"{name}.yaml").exists():
        name, n = f"{base}-{n}", n + 1
    return name


def dump(settings: EncodingSettings, **meta) -> str:
    body = {k: v for k, v in meta.items() if v}
    body["encoding"] = settings.to_dict()
    return yaml.safe_dump(body, allow_unicode=True, sort_keys=False, width=100)


def save_profile(
    ws, name: str, settings: EncodingSettings, *, based_on=None, fixes=None, new=True
) -> str:
    """Save `settings` as a profile; with `new`, never overwrite (a free name is chosen)."""
    name = safe_name(name)
    if new:
        name = _free_name(ws, name)
    profiles_dir(ws).mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        profiles_dir(ws) / f"{name}.yaml", dump(settings, based_on=based_on, fixes=fixes)
    )
    return name
