"""Where the repository keeps what it ships: the embedded model, sample data, icons."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSETS_DIR = REPO_ROOT / "assets"
SAMPLE_DATA_DIR = ASSETS_DIR / "data"
EMBEDDED_MODELS_DIR = ASSETS_DIR / "models"
EMBEDDED_MODEL_NAME = "tsumugi-tiny"
EMBEDDED_MODEL_DIR = EMBEDDED_MODELS_DIR / EMBEDDED_MODEL_NAME
PRESETS_DIR = REPO_ROOT / "presets"
ICON_PATH = ASSETS_DIR / "icon.svg"
