"""Evaluation while training (issue 22): suites scored on the model in training, the best
checkpoint kept through rotation and offered as `run:<id>@best`, early stopping with its
reason, and the memory estimate's evaluation pass."""

from __future__ import annotations

import json

import pytest

from studio.runs import curves
from studio.train import presets, vram
from studio.train.config import ConfigError, RunConfig, greater_is_better
from studio.train.evaluation import plan_for, score_line, scores_of
from studio.train.process import execute
from studio.train.start import estimate_memory, prepare_run

RANK = "sample-eval-rank"


# --- config and plan ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("evaluation", "extra", "code"),
    [
        ({"metric_for_best_model": "x.mrr_full"}, {}, "bad_best_metric"),
        ({"metric_for_best_model": "eval_loss"}, {"validation_split": 0}, "no_validation_data"),
        ({"early_stopping_patience": 2}, {"validation_split": 0}, "nothing_to_evaluate"),
        ({"early_stopping_patience": -1}, {}, "must_not_be_negative"),
    ],
)
def test_evaluation_settings_are_checked_with_a_code(evaluation, extra, code):
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_dict({"evaluation": evaluation, **extra})
    assert caught.value.code == code
    assert caught.value.text("ja") != caught.value.text("en")


def test_which_way_is_better():
    assert not greater_is_better("eval_loss")
    assert not greater_is_better("my-suite.perplexity")
    assert greater_is_better("sample-eval-rank.mrr_full")
    assert greater_is_better("sample-eval-qa.exact_match")


def test_the_plan_settles_the_metric_and_refuses_one_the_suite_lacks(workspace):
    config = RunConfig.from_dict({"evaluation": {"suites": [RANK, "sample-eval-qa"]}})
    plan = plan_for(workspace, config)
    assert plan.metric == f"{RANK}.mrr_full" and plan.greater_is_better  # its main metric
    assert [spec for spec, _ in plan.suites] == [RANK, "sample-eval-qa"]
    wrong = config.replace(evaluation={"suites": [RANK], "metric_for_best_model": f"{RANK}.acc"})
    with pytest.raises(Exception) as caught:
        plan_for(workspace, wrong)
    assert caught.value.code == "unknown_metric" and "mrr_full" in str(caught.value)
    gone = config.replace(evaluation={"suites": ["no-such-suite"]})
    with pytest.raises(Exception, match="evaluation.suites"):
        plan_for(workspace, gone)
    # Without suites: the validation loss when there is validation data, else nothing.
    assert plan_for(workspace, RunConfig.from_dict({"validation_split": 0.1})).metric == (
        "eval_loss"
    )
    assert plan_for(workspace, RunConfig.from_dict({})).metric is None


def test_scores_are_read_from_the_evaluation_metrics_with_their_errors():
    logs = {
        "eval_loss": 1.5,
        "eval_runtime": 3.0,
        f"eval_{RANK}.mrr_full": 0.75,
        f"eval_{RANK}.mrr_full_stderr": 0.04,
        "eval_suite_seconds": 2.0,
    }
    assert scores_of(logs) == {f"{RANK}.mrr_full": {"value": 0.75, "stderr": 0.04}}
    line = score_line(logs, f"{RANK}.mrr_full")
    assert line.startswith("eval_loss 1.5000") and f"{RANK}.mrr_full 0.7500 ± 0.0400" in line


def test_the_score_curve_follows_the_metric_with_one_standard_error_around_it():
    records = [
        {"kind": "train", "step": 2, "loss": 2.0},
        {"kind": "eval", "step": 2, "metric": f"{RANK}.mrr_full",
         "scores": {f"{RANK}.mrr_full": {"value": 0.5, "stderr": 0.1},
                    f"{RANK}.acc1_full": {"value": 0.3, "stderr": 0.1}}},
        {"kind": "eval", "step": 4, "metric": "eval_loss", "eval_loss": 1.25, "scores": {}},
    ]  # fmt: skip
    assert curves.series(records, "score") == [(2.0, 0.5), (4.0, 1.25)]
    assert curves.series(records, "score_low")[0] == (2.0, 0.4)
    assert curves.series(records, "score_high")[0] == (2.0, 0.6)
    assert curves.series(records, "score_high")[1] == (4.0, 1.25)  # the loss has no error


# --- memory -------------------------------------------------------------------------------


def test_the_estimate_takes_the_larger_of_the_training_step_and_the_evaluation_pass():
    config, _ = presets.load("qwen2.5-7b-qlora")
    arch = config.architecture
    plain = estimate_memory(config.replace(validation_split=0.0), arch)
    assert plain.phases == {"training": plain.total} and plain.peak == "training"
    small = estimate_memory(config.replace(validation_split=0.05), arch)
    assert small.phases["training"] == plain.total  # the step itself does not change
    assert small.total == max(small.phases.values())
    training = {**config.to_dict()["training"], "per_device_eval_batch_size": 32}
    big = estimate_memory(config.replace(validation_split=0.05, training=training), arch)
    # The evaluation batch's logits (32 x seq x 152k vocabulary) are the run's peak ...
    assert big.peak == "evaluation" and big.total > small.total and not big.fits
    assert any(code == "note_eval_peak" for code, _ in big.notes) or not plain.fits
    # ... and the advice names an evaluation batch that fits.
    advice = dict(big.advice)
    assert "lower_eval_batch" in advice
    fitted = advice["lower_eval_batch"]["batch_size"]
    assert fitted < 32
    training["per_device_eval_batch_size"] = fitted
    again = estimate_memory(config.replace(validation_split=0.05, training=training), arch)
    assert again.phases["evaluation"] <= again.gpu_bytes
    text = "\n".join(vram.summary_lines(big, "ja"))
    assert "評価のパス" in text
    # Suites add their own passes: scoring and the QA suites' generation.
    suites = config.replace(evaluation={"suites": [RANK, "sample-eval-qa"]})
    with_suites = estimate_memory(suites, arch)
    assert {"scoring", "generation"} <= set(with_suites.evaluation)


# --- a real run -------------------------------------------------------------------------------


def test_a_run_scores_suites_keeps_the_best_checkpoint_and_stops_early(workspace):
    """A learning rate too small to change anything: the score never improves after the
    first evaluation, so patience 1 stops the run at the second; the best checkpoint (the
    first evaluation's) survives rotation to one checkpoint and loads as run:<id>@best with
    the very scores it was given during training."""
    config, preset = presets.load(
        "cpu-demo-sft",
        [
            "max_steps=40",
            "save_steps=3",
            "eval_steps=3",
            "save_total_limit=1",
            "logging_steps=1",
            "learning_rate=1e-12",
            "validation_split=0",
            f"evaluation.suites=[{RANK}]",
            f"evaluation.metric_for_best_model={RANK}.mrr_full",
            "evaluation.early_stopping_patience=1",
        ],
    )
    run = prepare_run(workspace, config, preset=preset)
    assert execute(run, workspace) == 0
    status = run.status()
    assert status["state"] == "completed" and status["reason"] == "early_stopped"
    assert status["early_stop"]["best_step"] == 3 and status["step"] == 6
    evals = [r for r in run.metrics() if r.get("kind") == "eval"]
    assert [r["step"] for r in evals] == [3, 6]
    first = evals[0]["scores"][f"{RANK}.mrr_full"]
    assert 0 < first["value"] <= 1 and first["stderr"] > 0
    assert evals[0]["metric"] == f"{RANK}.mrr_full"

    best = run.best()
    assert best["step"] == 3 and best["value"] == first["value"]
    assert (run.checkpoints_dir / "checkpoint-3").is_dir()  # kept although the limit is 1
    dirs = workspace.model_dirs()
    assert dirs[f"run:{run.id}@best"] == best["path"]

    # The Evaluate tab's code on the saved checkpoint gives the numbers written in training.
    from studio.evaluate.suites import open_suite
    from studio.evaluate.tasks import run_suite
    from studio.models.load import load_model, resolve_source

    loaded = load_model(resolve_source(f"run:{run.id}@best", named_dirs=dirs))
    _, found = run_suite(loaded, open_suite(workspace, RANK))
    for name, summary in found.items():
        written = evals[0]["scores"][f"{RANK}.{name}"]
        assert f"{summary['value']:.4f}" == f"{written['value']:.4f}", name

    # What the user is told, and what `runs show` carries.
    from studio.runs import history
    from studio.ui.run_status import explain

    said = explain(status, "en")
    assert f"no improvement of {RANK}.mrr_full for 1 evaluations since step 3" in said
    assert "早期終了" in explain(status, "ja")
    summary = history.summarize(run)
    assert summary["best"]["step"] == 3 and summary["best_score"].endswith("mrr_full @3")
    assert (
        summary["scores"][f"{RANK}.mrr_full"]["value"]
        == evals[-1]["scores"][f"{RANK}.mrr_full"]["value"]
    )

    from studio.cli import main

    assert main(["runs", "show", run.id, "--json", "--workspace", str(workspace.root)]) == 0


def test_runs_show_and_export_offer_the_best_checkpoint(workspace, capsys):
    config, preset = presets.load(
        "cpu-demo-sft",
        ["max_steps=4", "save_steps=2", "eval_steps=2", "validation_split=0.1",
         "logging_steps=1", "evaluation.metric_for_best_model=eval_loss"],
    )  # fmt: skip
    run = prepare_run(workspace, config, preset=preset)
    assert execute(run, workspace) == 0
    best = run.best()
    evals = [r for r in run.metrics() if r.get("kind") == "eval"]
    losses = {r["step"]: r["eval_loss"] for r in evals}
    assert best["metric"] == "eval_loss" and best["value"] == min(losses.values())
    # The "score" curve follows the eval loss when that is the metric.
    assert curves.series(run.metrics(), "score") == [(float(s), v) for s, v in losses.items()]

    from studio.cli import main

    capsys.readouterr()
    root = str(workspace.root)
    assert main(["runs", "show", run.id, "--json", "--workspace", root]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["best"]["step"] == best["step"] and shown["best"]["metric"] == "eval_loss"
    assert main(["export", f"{run.id}@best", "--json", "--workspace", root]) == 0
    exported = json.loads(capsys.readouterr().out)
    written = json.loads((workspace.models / exported["name"] / "studio_export.json").read_text())
    assert written["weights"] == f"checkpoint-{best['step']}"
    # A run that never evaluated has no best to export.
    plain, preset = presets.load("cpu-demo-sft", ["max_steps=2", "validation_split=0"])
    other = prepare_run(workspace, plain, preset=preset)
    assert execute(other, workspace) == 0
    capsys.readouterr()
    assert main(["export", other.id, "--best", "--json", "--workspace", root]) == 1
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "no_best_checkpoint"
