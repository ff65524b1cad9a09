"""A run mirrors its metrics to TensorBoard and trackio when the config asks
(`training.report_to`); the run folder stays the record, and a tracker that is not
installed is refused with how to install it, before anything starts."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from studio.train import presets
from studio.train.config import ConfigError
from tests.conftest import REPO, child_env


def test_a_run_mirrors_its_metrics_to_tensorboard_and_trackio(workspace, tmp_path):
    trackio_dir = tmp_path / "trackio"
    proc = subprocess.run(
        [sys.executable, "-m", "studio", "train", "cpu-demo-sft", "--json",
         "--workspace", str(workspace.root),
         "--set", "max_steps=4", "--set", "logging_steps=1", "--set", "validation_split=0",
         "--set", "training.report_to=[tensorboard, trackio]"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env=child_env(TRACKIO_DIR=str(trackio_dir), OMP_NUM_THREADS="1"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    run_dir = workspace.runs / out["run"]
    losses = [r["loss"] for r in map(json.loads, (run_dir / "metrics.jsonl").open()) if "loss" in r]
    assert len(losses) == 4  # the run folder keeps every logged step, as always

    # TensorBoard: event files in the run's own folder, holding the same training losses.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(next((run_dir / "tensorboard").rglob("events.out.*")).parent))
    events.Reload()
    logged = [e.value for e in events.Scalars("train/loss")]
    assert logged == pytest.approx(losses, rel=1e-5)

    # trackio: the project, with this run under its id, in the folder trackio was told.
    databases = list(trackio_dir.rglob("*.db"))
    assert databases, list(trackio_dir.rglob("*"))
    found = []
    for database in databases:
        with sqlite3.connect(database) as db:
            tables = {row[0] for row in db.execute("select name from sqlite_master")}
            if "metrics" in tables:
                found += [row[0] for row in db.execute("select distinct run_name from metrics")]
    assert out["run"] in found


def test_a_tracker_that_is_not_installed_is_refused_with_the_way_to_install_it(
    workspace, monkeypatch
):
    import importlib.util

    from studio.train.start import preflight

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a)
    )
    config, _ = presets.load("cpu-demo-sft", ["training.report_to=[wandb]"])
    with pytest.raises(ConfigError) as caught:
        preflight(workspace, config)
    assert caught.value.code == "tracker_missing"
    assert "pip install wandb" in str(caught.value) and "wandb" in caught.value.text("ja")
    with pytest.raises(ConfigError, match="training.report_to must be one of"):
        presets.load("cpu-demo-sft", ["training.report_to=[mlflowx]"])
