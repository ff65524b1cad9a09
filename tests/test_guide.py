"""The guided first run's library and CLI (the whole journey in a browser is
test_journey_browser.py; it trains, this file does not)."""

import pytest

from studio import guide
from tests.test_cli import run_cli


def test_a_new_workspace_is_fresh_and_starts_at_the_sample(workspace):
    assert guide.is_fresh(workspace)
    assert set(guide.states(workspace).values()) == {guide.TODO}
    assert guide.next_step(workspace) == "sample"


def test_steps_record_what_they_made_and_skips_move_on(workspace):
    summary = guide.look_at_sample(workspace)
    assert summary.version == "sample-corpus/v0001" and summary.rows > 1000
    assert len(summary.examples) == 3
    guide.mark(workspace, "clean", guide.SKIPPED)
    assert guide.states(workspace)["clean"] == guide.SKIPPED
    assert guide.next_step(workspace) == "inspect"
    recorded = guide.load_progress(workspace)["steps"]
    assert recorded["sample"]["rows"] == summary.rows and recorded["sample"]["at"]
    with pytest.raises(guide.GuideError, match="unknown step"):
        guide.mark(workspace, "nonsense", guide.DONE)


def test_work_done_in_the_tabs_counts_for_the_guide(workspace):
    from studio.data.clean import run_pipeline

    run_pipeline(workspace, "sample-corpus", "ja")  # as the Data tab does it
    assert guide.states(workspace)["clean"] == guide.DONE
    assert guide.states(workspace)["sample"] == guide.TODO


def test_steps_after_training_say_to_train_first(workspace):
    for step in (guide.compare_demo, guide.chat_demo, guide.evaluate_demo):
        with pytest.raises(guide.GuideError, match="train"):
            step(workspace, None)
    with pytest.raises(guide.GuideError, match="train"):
        guide.export_demo(workspace)


def test_a_damaged_progress_file_is_read_as_empty(workspace):
    guide.progress_path(workspace).write_text("{not json", encoding="utf-8")
    assert guide.next_step(workspace) == "sample"
    guide.mark(workspace, "sample", guide.SKIPPED)
    assert guide.states(workspace)["sample"] == guide.SKIPPED
    damaged = workspace.root / "guide.json.damaged"
    assert damaged.read_text(encoding="utf-8") == "{not json"  # kept, not overwritten


def test_cli_runs_skips_and_reports_steps(workspace, capsys):
    ws = str(workspace.root)
    code, out = run_cli(capsys, "guide", "next", "inspect", "--skip", "clean",
                        "--workspace", ws, "--json")  # fmt: skip
    assert code == 0 and out["ok"]
    assert set(out["ran"]) == {"sample", "inspect"}
    assert "ready to train" in out["ran"]["inspect"]
    assert out["steps"]["clean"] == "skipped" and out["next"] == "train"

    code, out = run_cli(capsys, "guide", "compare", "--workspace", ws, "--json")
    assert code == 1 and "train" in out["error"]["message"]
    code, out = run_cli(capsys, "guide", "launch", "--workspace", ws, "--json")
    assert code == 1 and "unknown step" in out["error"]["message"]


def test_a_demo_run_that_ended_unfinished_leaves_the_step_to_do(workspace):
    guide.mark(workspace, "train", guide.RUNNING, run="20260101-000000-gone")
    assert guide.states(workspace)["train"] == guide.TODO
    assert guide.first_open(guide.states(workspace)) == "sample"


def test_the_guide_follows_its_own_run_and_counts_evaluate_and_export_done_elsewhere(workspace):
    """A newer experiment does not replace the guide's own fine-tune in its later steps, and
    evaluating or exporting that fine-tune in their own tabs marks the steps done."""
    import json
    import shutil

    from studio.evaluate.results import new_session, save_session
    from studio.paths import EMBEDDED_MODEL_DIR
    from studio.train import presets
    from studio.train.start import prepare_run

    def finished_run():
        config, preset = presets.load(guide.TRAIN_PRESET)
        run = prepare_run(workspace, config, preset=preset)
        shutil.copytree(EMBEDDED_MODEL_DIR, run.root / "final")
        run.set_status("completed")
        return run

    ours = finished_run()
    guide.mark(workspace, "train", guide.DONE, run=ours.id)
    newer = finished_run()
    assert newer.id != ours.id
    assert guide.finetune(workspace)[0] == f"run:{ours.id}"
    states = guide.states(workspace)
    assert states["evaluate"] == guide.TODO and states["export"] == guide.TODO
    session = new_session([{"spec": f"run:{ours.id}", "label": f"run:{ours.id}"}], ["x"], {})
    save_session(workspace, session)
    exported = workspace.models / "my-export"
    exported.mkdir(parents=True)
    (exported / "studio_export.json").write_text(json.dumps({"run": ours.id}), "utf-8")
    states = guide.states(workspace)
    assert states["evaluate"] == guide.DONE and states["export"] == guide.DONE
