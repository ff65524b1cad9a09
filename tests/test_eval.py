"""Evaluation: metrics against hand-computed values, batched scoring against a plain forward
pass, the suite schema check, a checkpoint sweep over a LoRA run, stored results, the CLI
and the lm-evaluation-harness bridge."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import yaml

from studio.evaluate import EvalError, harness, results, tasks
from studio.evaluate import metrics as m
from studio.evaluate.runner import ModelEntry, evaluate, sweep_models
from studio.evaluate.scoring import Score, continuation_scores, split_ids, text_nll
from studio.evaluate.suites import (
    CANDIDATE_RANKING,
    MULTIPLE_CHOICE,
    SHORT_ANSWER_QA,
    Suite,
    SuiteError,
    check_file,
    import_suite,
    open_suite,
)
from studio.models.pool import pool_opener
from studio.paths import SAMPLE_DATA_DIR
from tests.conftest import REPO, child_env, make_adapter


def make_lora_run(ws, run_id: str = "20261122-000000-eval", steps=(2, 4), final: bool = True):
    """A finished LoRA run as the trainer leaves it: checkpoints with trainer_state.json and
    the tokenizer, and a final adapter, each with its own random LoRA weights (so that every
    checkpoint scores differently), built without training."""
    from studio.runs.store import Run

    root = ws.runs / run_id
    root.mkdir(parents=True)
    run = Run(root)
    run.config_path.write_text(yaml.safe_dump({"model": "tsumugi-tiny", "method": "lora"}))
    for step in steps:
        folder = make_adapter(root / "checkpoints" / f"checkpoint-{step}", seed=step)
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    if final:
        make_adapter(run.final_dir, seed=100)
    run.set_status("completed", step=steps[-1])
    return run


# --- metrics --------------------------------------------------------------------------------


def test_normalisation_exact_match_and_character_f1():
    assert m.normalize("　ＡＢＣ　 １２３\n") == "ABC 123"  # NFKC, whitespace collapsed
    assert m.normalize("ｶﾀｶﾅ") == "カタカナ"
    assert m.exact_match(" 富士山\u3000", ["富士", "富士山"]) == 1.0
    assert m.exact_match("３７７６ｍ", ["3776m"]) == 1.0
    assert m.exact_match("富士山です", ["富士山"]) == 0.0
    # 3 of 5 predicted characters are right and all 3 gold ones are found: 2*.6*1/1.6
    assert m.char_f1("富士山です", ["富士山"]) == pytest.approx(0.75)
    assert m.char_f1("富士山です", ["ふじさん", "富士山"]) == pytest.approx(0.75)  # best answer
    assert m.char_f1("琵琶湖", ["富士山"]) == 0.0


def test_ranks_ties_and_standard_errors():
    assert m.rank_of([-1.0, -2.0, -3.0], 0) == 1
    assert m.reciprocal_rank([-3.0, -1.0, -2.0], 0) == pytest.approx(1 / 3)
    assert m.rank_of([-1.0, -1.0, -2.0], 0) == 2  # a tie does not count for the answer
    # values 1,0,1,1: mean .75, sample sd .5, standard error .5/2
    assert m.mean_se([1, 0, 1, 1]) == (0.75, 0.25, 4)
    assert m.mean_se([None, 1.0]) == (1.0, None, 1)
    # paired: a constant gain of one item in ten is noise over ten items, a large one is not
    a = {str(i): 1.0 for i in range(10)}
    b = {str(i): float(i != 0) for i in range(10)}
    near = m.paired_difference(a, b)
    assert near["difference"] == pytest.approx(0.1) and near["within_noise"]
    far = m.paired_difference(a, {str(i): float(i < 2) for i in range(10)})
    assert far["difference"] == pytest.approx(0.8) and not far["within_noise"]
    ratio = m.ratio_summary([2.0, 4.0], [1.0, 3.0])
    assert ratio["value"] == pytest.approx(1.5) and ratio["stderr"] > 0


def _stub_scores(monkeypatch, by_text: dict[str, float]):
    """continuation_scores answering hand-chosen log-probabilities (per continuation)."""

    def fake(loaded, requests, *, straddle="include", batch_tokens=0):
        out = []
        for context, continuation in requests:
            key = continuation if continuation in by_text else context + continuation
            out.append(Score(by_text[key], 1, len(continuation)))
        return out

    monkeypatch.setattr(tasks, "continuation_scores", fake)


def test_length_normalisation_changes_the_winner(monkeypatch):
    # "猫" -3.0 in total is the raw winner; "ライオン" -4.0 is -1.0 per character and wins
    # once normalised by length.
    _stub_scores(monkeypatch, {"猫": -3.0, "ライオン": -4.0})
    suite = Suite("mc", "v1", MULTIPLE_CHOICE, [
        {"id": "q1", "question": "百獣の王は？", "choices": ["猫", "ライオン"], "answer": 1},
    ])  # fmt: skip
    items, found = tasks.multiple_choice(None, suite)
    assert items[0]["pick"] == 0 and items[0]["pick_norm"] == 1
    assert found["acc"]["value"] == 0.0 and found["acc_norm"]["value"] == 1.0

    # Ranking, whole sentence: -6.0 over 3 characters vs -7.0 over 6 characters.
    _stub_scores(monkeypatch, {"猫です": -6.0, "ライオンです": -7.0, "です": -1.0})
    suite = Suite("rank", "v1", CANDIDATE_RANKING, [
        {"id": "r1", "template": "{word}です", "candidates": ["猫", "ライオン"], "answer": "ライオン"},
    ])  # fmt: skip
    items, found = tasks.candidate_ranking(None, suite)
    assert items[0]["rr_full"] == 0.5 and items[0]["rr_full_norm"] == 1.0
    assert found["mrr_full"]["value"] == 0.5 and found["acc1_full_norm"]["value"] == 1.0
    assert items[0]["top"] == "猫"


def test_short_answer_prompt_is_fixed_k_shot():
    shots = [{"question": "赤い惑星は？", "answers": ["火星", "かせい"]}]
    assert tasks.qa_prompt("日本一高い山は？", shots) == (
        "質問: 赤い惑星は？\n回答: 火星\n\n質問: 日本一高い山は？\n回答: "
    )
    assert tasks.qa_prompt("Highest?", []) == "Question: Highest?\nAnswer: "


# --- scoring on the embedded model ---------------------------------------------------------------


def test_batched_scores_equal_one_plain_forward_pass(embedded):
    import torch

    tok = embedded.tokenizer
    requests = [
        ("", "富士山は日本で一番高い山です。"),
        ("質問: 富士山の高さは？\n回答: ", "3776メートル"),
        ("富士山", "は日本で一番高い山です。"),
        ("", "あ"),
    ]
    batched = continuation_scores(embedded, requests)
    for (context, continuation), got in zip(requests, batched, strict=True):
        ids = tok(context + continuation)["input_ids"]  # BOS + the text, encoded together
        ctx, cont, _ = split_ids(tok, context, continuation)
        with torch.no_grad():
            logits = embedded.model(torch.tensor([ids])).logits[0]
        logprobs = torch.log_softmax(logits.float(), -1)
        start = len(ids) - len(cont)
        want = sum(logprobs[p - 1, ids[p]].item() for p in range(start, len(ids)))
        assert got.logprob == pytest.approx(want, abs=1e-3)
        assert got.tokens == len(cont)


def test_a_candidate_is_never_tokenized_alone(embedded):
    tok = embedded.tokenizer
    # "富士山は" is one token of this tokenizer: the slot's boundary falls inside it.
    ctx, cont, chars = split_ids(tok, "富士山", "は日本で一番高い山です。", straddle="include")
    whole = tok("富士山は日本で一番高い山です。", add_special_tokens=False)["input_ids"]
    assert ctx + cont == whole and ctx == [] and chars == len("は日本で一番高い山です。")
    ctx, cont, chars = split_ids(tok, "富士山", "は日本で一番高い山です。", straddle="exclude")
    assert ctx + cont == whole and len(ctx) == 1 and chars == len("日本で一番高い山です。")


def test_bundled_ranking_suite_and_perplexity_windows(embedded):
    # (its speed is measured by bench/eval_rank.py, not asserted: a busy machine is slow)
    suite = open_suite_file("eval_rank.jsonl", CANDIDATE_RANKING)
    items, found = tasks.candidate_ranking(embedded, suite)
    assert len(items) == 50 and 0 < found["mrr_full"]["value"] <= 1
    assert found["mrr_full"]["stderr"] > 0 and found["acc1_after_norm"]["n"] == 50
    # A text longer than the model's 512 positions is scored in windows, every token once.
    long_text = "富士山は日本で一番高い山です。" * 120
    (nll, count), (short_nll, short_count) = text_nll(embedded, [long_text, "あ"])
    n_tokens = len(embedded.tokenizer(long_text, add_special_tokens=False)["input_ids"])
    assert count == n_tokens > 512 and nll > 0 and short_count == 1


def open_suite_file(name: str, kind: str) -> Suite:
    found, items = check_file(SAMPLE_DATA_DIR / name)
    assert found == kind
    return Suite(name, "", kind, items)


# --- suites ------------------------------------------------------------------------------------


def test_malformed_row_names_file_and_line_and_nothing_is_written(workspace, tmp_path):
    bad = tmp_path / "my-rank.jsonl"
    rows = [
        {"template": "{word}は日本一高い山", "candidates": ["富士山", "北岳"], "answer": "富士山"},
        {"template": "{word}は日本一大きい湖", "candidates": ["琵琶湖", "浜名湖"], "answer": "琵琶湖"},
        {"template": "{word}は日本一長い川", "candidates": ["信濃川", "利根川"], "answer": "四万十川"},
    ]  # fmt: skip
    bad.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    with pytest.raises(SuiteError, match=r"my-rank\.jsonl:3: the answer '四万十川' is not among"):
        import_suite(workspace, bad)
    assert not (workspace.evals / "suites" / "my-rank").exists()
    bad.write_text('{"question": "q", "answers": ["a"]}\n{"question": "q2", "answers": []\n')
    with pytest.raises(SuiteError, match=r"my-rank\.jsonl:2: not valid JSON"):
        check_file(bad)
    bad.write_text('{"question": "q", "answers": ["a"]}\n\n{"question": "q2", "answers": "a"}\n')
    with pytest.raises(SuiteError, match=r"my-rank\.jsonl:3: 'answers' must be a list"):
        check_file(bad)
    bad.write_text('{"template": "no slot", "candidates": ["a", "b"], "answer": "a"}\n')
    with pytest.raises(SuiteError, match=r":1: 'template' must contain the slot \{word\}"):
        check_file(bad)


def test_upload_detects_the_kind_keeps_shots_and_versions(workspace, tmp_path):
    path = tmp_path / "trivia.jsonl"
    path.write_text(
        '{"id": "s1", "question": "赤い惑星は？", "answers": ["火星"], "shot": true}\n'
        '{"id": "a", "question": "日本一高い山は？", "answers": ["富士山", "富士"]}\n'
        '{"id": "b", "question": "日本一大きい湖は？", "answer": "琵琶湖"}\n',
        encoding="utf-8",
    )
    first = import_suite(workspace, path)
    second = import_suite(workspace, path)
    assert (first.version, second.version) == ("v0001", "v0002")
    assert first.format == SHORT_ANSWER_QA and first.files == ["items.jsonl", "shots.jsonl"]
    suite = open_suite(workspace, "trivia")  # the latest version
    assert suite.version == "v0002" and [i["id"] for i in suite.items] == ["a", "b"]
    assert suite.shots[0]["id"] == "s1" and suite.settings == {"k": 1}
    assert suite.items[1]["answers"] == ["琵琶湖"]
    bundled = open_suite(workspace, "sample-eval-qa")
    assert bundled.kind == SHORT_ANSWER_QA and len(bundled.items) == 50
    assert len(bundled.shots) == 3
    with pytest.raises(SuiteError, match="no evaluation suite 'nope'"):
        open_suite(workspace, "nope")


# --- runs, sweeps, stored results ---------------------------------------------------------------


def test_checkpoint_sweep_results_round_trip_and_exports(workspace, tmp_path):
    run = make_lora_run(workspace)
    entries = sweep_models(workspace, run.id)
    assert [(e.role, e.step) for e in entries] == [
        ("base", 0),
        ("checkpoint", 2),
        ("final", 4),  # checkpoint-4 is the final model's step: not scored twice
    ]
    assert entries[1].spec == f"run:{run.id}@2" and entries[2].spec == f"run:{run.id}"
    seen = []
    session = evaluate(
        workspace,
        ["sample-eval-rank"],
        entries,
        pool_opener(workspace),
        limit=6,
        progress=lambda fraction, message: seen.append(fraction),
    )
    assert seen[-1] == 1.0 and session["state"] == "completed"
    # Each checkpoint is its own adapter over the one base: their log-probabilities differ.
    firsts = {tuple(r["items"][0]["logprobs"]["full"]) for r in session["results"]}
    assert len(firsts) == 3
    assert [r["step"] for r in session["results"]] == [0, 2, 4]

    stored = results.load_session(workspace, session["id"])
    assert stored == json.loads(json.dumps(session))  # what was returned is what was saved
    assert results.list_sessions(workspace)[0]["id"] == session["id"]
    frame = results.step_rows(stored["results"])
    assert frame["step"].tolist() == [0, 2, 4]
    matrix = results.matrix(stored["results"], "sample-eval-rank/v0001")
    assert matrix.shape == (6, 3) and matrix.index[0] == "evrank-01"
    assert results.heatmap_png(stored["results"], tmp_path / "h.png").stat().st_size > 2000
    assert results.steps_png(stored["results"], tmp_path / "s.png").stat().st_size > 2000
    lines = results.scores_csv(stored["results"], stored["id"]).splitlines()
    assert lines[0].startswith("suite,model,step,metric,value,stderr")
    assert len(lines) == 1 + 3 * 8  # three models x eight ranking metrics
    items = results.items_csv(stored["results"]).splitlines()
    assert len(items) == 1 + 3 * 6 and "rr_full_norm" in items[0]
    notes = results.comparisons(stored["results"])
    assert [c["model"] for c in notes] == ["@2", "@4 (final)"]
    assert all(c["baseline"] == "tsumugi-tiny (base)" for c in notes)
    with pytest.raises(EvalError):
        results.load_session(workspace, "../../etc/passwd")


def test_a_model_that_cannot_load_is_reported_and_the_rest_scored(workspace):
    session = evaluate(
        workspace,
        ["sample-eval-rank"],
        [ModelEntry("tsumugi-tiny", "tiny"), ModelEntry("/no/such/model", "missing")],
        pool_opener(workspace),
        limit=3,
    )
    assert [r["model_label"] for r in session["results"]] == ["tiny"]
    assert session["errors"][0]["model"] == "missing"
    assert "No model folder" in session["errors"][0]["message"]


def studio_eval(ws, *args):
    return subprocess.run(
        [sys.executable, "-m", "studio", "eval", *args, "--workspace", str(ws.root)],
        cwd=REPO, capture_output=True, text=True, timeout=180, env=child_env(),
    )  # fmt: skip


def test_cli_eval_json_and_a_malformed_suite_file(workspace, tmp_path):
    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"text": "ok"}\n{"text": ""}\n', encoding="utf-8")
    csv_path = tmp_path / "scores.csv"
    proc = studio_eval(
        workspace,
        "sample-eval-rank",
        str(bad),
        "--models",
        "tsumugi-tiny",
        "--limit",
        "4",
        "--csv",
        str(csv_path),
        "--json",
    )
    out = json.loads(proc.stdout)
    assert proc.returncode == 1 and not out["ok"]
    assert "broken.jsonl:2: 'text' must be a non-empty string" in out["error"]["message"]
    good = tmp_path / "texts.jsonl"
    good.write_text('{"text": "富士山は日本で一番高い山です。"}\n{"text": "お茶をどうぞ。"}\n')
    proc = studio_eval(
        workspace, "sample-eval-rank", str(good), "--models", "tsumugi-tiny", "--limit", "4",
        "--csv", str(csv_path), "--json",
    )  # fmt: skip
    out = json.loads(proc.stdout)
    assert proc.returncode == 0 and out["ok"], proc.stderr[-2000:]
    metrics = {(s["suite"], s["metric"]): s for s in out["scores"]}
    assert metrics[("sample-eval-rank/v0001", "mrr_full")]["n"] == 4
    ppl = metrics[("texts/v0001", "perplexity")]
    assert ppl["value"] > 1 and ppl["higher_is_better"] is False
    assert csv_path.read_text().startswith("suite,model,step,metric")
    assert json.loads((workspace.evals / "results" / f"{out['session']}.json").read_text())
    listed = json.loads(studio_eval(workspace, "--list", "--json").stdout)
    assert "texts/v0001" in listed["suites"] and listed["sessions"][0]["id"] == out["session"]


# --- lm-evaluation-harness bridge -----------------------------------------------------------------


def test_harness_missing_says_how_to_install(workspace, embedded, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "lm_eval" else real(name, *a)
    )
    ok, why = harness.available()
    assert not ok and "pip install -r requirements-eval.txt" in why
    with pytest.raises(harness.HarnessUnavailable, match="optional extra"):
        harness.run_task(workspace, embedded, "lm-eval:anything")
    session_entries = [ModelEntry("tsumugi-tiny", "tiny")]
    with pytest.raises(EvalError, match="lm-evaluation-harness is not installed"):
        evaluate(workspace, ["lm-eval:anything"], session_entries, pool_opener(workspace))


@pytest.mark.slow
def test_harness_runs_a_local_task_in_process(workspace, embedded):
    pytest.importorskip("lm_eval")
    folder = harness.tasks_dir(workspace)
    folder.mkdir(parents=True)
    rows = [
        {"question": "日本で一番高い山は？", "choices": ["富士山", "琵琶湖", "信濃川"], "label": 0},
        {"question": "日本で一番大きい湖は？", "choices": ["富士山", "琵琶湖", "信濃川"], "label": 1},
        {"question": "日本で一番長い川は？", "choices": ["富士山", "琵琶湖", "信濃川"], "label": 2},
    ]  # fmt: skip
    (folder / "mini.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    (folder / "mini_mc.yaml").write_text(
        "task: mini_mc\n"
        "dataset_path: json\n"
        "dataset_kwargs: {data_files: {test: mini.jsonl}}\n"  # relative to the YAML
        "test_split: test\n"
        "output_type: multiple_choice\n"
        'doc_to_text: "質問: {{question}}\\n回答:"\n'
        'doc_to_choice: "{{choices}}"\n'
        "doc_to_target: label\n"
        "metric_list: [{metric: acc}, {metric: acc_norm}]\n",
        encoding="utf-8",
    )
    assert harness.task_choices(workspace) == ["lm-eval:mini_mc"]
    items, found, info = harness.run_task(workspace, embedded, "lm-eval:mini_mc")
    assert [i["id"] for i in items] == ["doc-0", "doc-1", "doc-2"]
    assert set(found) == {"acc", "acc_norm"} and found["acc"]["n"] == 3
    assert math.isclose(found["acc"]["value"], sum(i["acc"] for i in items) / 3)
    # The same picks as the built-in multiple-choice scorer on the same prompt and choices.
    suite = Suite("mc", "v1", MULTIPLE_CHOICE, [
        {"id": str(n), "question": r["question"], "choices": r["choices"], "answer": r["label"]}
        for n, r in enumerate(rows)
    ])  # fmt: skip
    ours, _ = tasks.multiple_choice(embedded, suite)
    assert [i["acc"] for i in ours] == [i["acc"] for i in items]
    assert info["primary"] == "acc" and info["lm_eval"]
