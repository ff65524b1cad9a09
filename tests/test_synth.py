"""SFT data synthesized from a corpus (issue 28): passages, parsing, the checks and their
rejection reasons, the job's version and lineage, stop/resume without repeating a passage,
the CLI and the child process with the embedded model, and the Data tab's endpoints.

Where a test needs replies in the asked form, it uses `ScriptedStandIn`, a deterministic
stand-in generator written in this file behind the job's generator interface: the embedded
2.8M-parameter model writes almost nothing a check accepts, which is the truth about it and
is what the tests with the real model assert.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from studio.synth.checks import REASONS, Pair, check, instruction_spans, judge, parse
from studio.synth.generators import Reply
from studio.synth.passages import PassageSettings, char_spans, passages, token_spans
from studio.synth.templates import (
    TemplateError,
    load_template,
    parse_template,
    template_names,
    template_text,
)
from tests.conftest import REPO, child_env, wait_until

CORPUS = REPO / "assets" / "data" / "corpus.jsonl"
QA = load_template("qa-ja")


class ScriptedStandIn:
    """A stand-in generator (not a model): for each passage it writes one grounded pair
    (the passage's first sentence as the answer), plus whatever `extra(passage_text)` adds.
    It records which passages it was asked for, and can request a stop after some calls."""

    backend = "stand-in"

    def __init__(self, extra=None, stop_after: int | None = None, job=None) -> None:
        self.extra, self.stop_after, self.job = extra, stop_after, job
        self.asked: list[str] = []
        self.calls = 0

    def generate(self, conversations, seed=0):
        self.calls += 1
        replies = []
        for conversation in conversations:
            passage = conversation[-1]["content"].split("本文:\n", 1)[1]
            self.asked.append(passage)
            first = passage.split("。")[0] + "。"
            text = f"質問: 本文の最初の文は何を述べていますか？\n回答: {first}\n"
            text += self.extra(passage) if self.extra else ""
            replies.append(Reply(text, len(text), True, 100))
        if self.stop_after and self.calls >= self.stop_after and self.job is not None:
            self.job.request_stop()
        return replies


@pytest.fixture
def corpus(workspace, tmp_path):
    """The bundled corpus's Japanese documents (it also holds English and mojibake ones, for
    the cleaning demo; the checks would rightly reject pairs made from those)."""
    from studio.data.ingest import import_path
    from studio.synth.checks import language_ok

    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    japanese = [x for x in lines if language_ok(json.loads(x)["text"], "ja")]
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join(japanese) + "\n", encoding="utf-8")
    version, _ = import_path(workspace, path)
    return version


def settings_for(spec, **changes):
    from studio.generate import GenerationSettings
    from studio.synth.job import SynthSettings

    values = dict(
        source=spec,
        model="embedded",
        template=QA.to_dict(),
        passages=PassageSettings(size=250, overlap=50),
        limit=12,
        generation=GenerationSettings(max_new_tokens=48, temperature=0.7, top_p=0.9),
        batch_size=4,
    )
    values.update(changes)
    return SynthSettings(**values)


# --- passages -------------------------------------------------------------------------------
def test_passages_overlap_end_at_sentences_and_are_numbered_stably():
    text = "".join(f"これは{i}番目の文です。" for i in range(60))
    spans = list(char_spans(text, 100, 20))
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    for (s1, e1), (s2, _) in zip(spans, spans[1:], strict=False):
        assert s2 < e1 <= s2 + 20 + 1 and e1 - s1 <= 100  # overlap, never longer than asked
        assert text[e1 - 1] == "。"  # ended at a sentence end
    docs = [(0, "a", text), (1, "b", "短い。"), (2, "c", text[:300])]
    found = list(passages(docs, PassageSettings(size=100, overlap=20)))
    assert [p.index for p in found] == list(range(len(found)))
    assert all(p.doc_id != "b" for p in found)  # shorter than min_chars: no prompt
    assert all(docs[p.row][2][p.start : p.end] == p.text for p in found)
    again = list(passages(docs, PassageSettings(size=100, overlap=20), limit=5))
    assert [(p.row, p.start) for p in again] == [(p.row, p.start) for p in found[:5]]


def test_passages_by_tokens_follow_the_tokenizer(embedded):
    tok = embedded.tokenizer
    text = CORPUS.read_text(encoding="utf-8").splitlines()[0]
    text = json.loads(text)["text"]
    spans = list(token_spans(text, 64, 8, tok))
    assert spans[-1][1] == len(text) and len(spans) > 1
    for start, end in spans[:-1]:
        n = len(tok(text[start:end], add_special_tokens=False)["input_ids"])
        assert 56 <= n <= 72, n  # about 64 tokens (re-tokenizing a cut may merge at the edges)


# --- templates -------------------------------------------------------------------------------
def test_bundled_templates_load_in_both_languages_and_both_forms():
    found = {n: load_template(n) for n in template_names()}
    assert {(x.form, x.language) for x in found.values()} == {
        ("qa", "ja"), ("qa", "en"), ("chat", "ja"), ("chat", "en"),
    }  # fmt: skip
    for template in found.values():
        messages = template.messages("PASSAGE-TEXT", persona="執事")
        assert "PASSAGE-TEXT" in messages[-1]["content"] and "執事" in messages[-1]["content"]
        assert "PASSAGE-TEXT" not in template.instructions()


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"prompt": "本文なし"}, "template_no_passage"),
        ({"prompt": "{passage} {secret}"}, "template_placeholder"),
        ({"prompt": "{passage} {passage.__class__}"}, "template_placeholder"),
        ({"prompt": "{passage} {"}, "template_braces"),
        ({"form": "essay"}, "template_choice"),
        ({"labels": {"question": "質問"}}, "bad_template_field"),
    ],
)
def test_a_bad_template_is_refused_with_its_reason_in_japanese(change, code):
    import yaml

    data = yaml.safe_load(template_text("qa-ja")) | change
    with pytest.raises(TemplateError) as err:
        parse_template(yaml.safe_dump(data, allow_unicode=True), "mine.yaml")
    assert err.value.code == code
    assert "mine.yaml" in err.value.text("ja")
    with pytest.raises(TemplateError) as err:
        parse_template("prompt: [unclosed", "x.yaml")
    assert err.value.code == "template_yaml"


# --- parsing and checks ----------------------------------------------------------------------
PASSAGE = (
    "高松に旅行して、二日間で五軒のうどん店を回りました。そばはそば粉から作る麺で、"
    "つなぎに小麦粉を混ぜることが多いです。"
)


def test_labelled_replies_are_parsed_in_their_common_variants():
    reply = (
        "質問: そばは何から作りますか？\n回答: そば粉から作る麺です。\n続きの行です。\n"
        "**質問2**： 何軒回りましたか\n- 回答2: 五軒です。\n雑談\n質問: 答えのない質問"
    )
    pairs = parse(reply, QA)
    assert [p.turns for p in pairs] == [
        ["そばは何から作りますか？", "そば粉から作る麺です。\n続きの行です。"],
        ["何軒回りましたか", "五軒です。\n雑談"],
    ]
    chat = load_template("chat-en")
    talk = "Assistant: hello\nUser: What is soba?\nUser: Tell me.\nAssistant: Noodles.\nUser: ok"
    assert [p.turns for p in parse(talk, chat)] == [["What is soba?\nTell me.", "Noodles."]]
    assert parse("no labels at all", chat) == []


def test_every_rejection_reason_on_planted_replies():
    spans = instruction_spans(QA.instructions())
    cases = {
        "unparsable": "ただの文章です。",
        "empty_question": "質問: \n回答: そば粉から作る麺です。",
        "empty_answer": "質問: そばは？\n回答: ",
        "end_marker": "質問: そばは？\n回答: そば粉から作る麺です。</s>",
        "copies_prompt": "質問: そばは？\n回答: 本文の内容だけで答えられる質問と、その回答を3組作って",
        "wrong_language": "質問: What is soba?\n回答: Soba is made from buckwheat flour.",
        "not_grounded": "質問: 好きな色は？\n回答: 青色が一番好きで、海を見るのが趣味です。",
    }
    for reason, reply in cases.items():
        kept, rejected = judge(reply, PASSAGE, QA, spans, cut=False)
        assert not kept and [r.reason for r in rejected] == [reason], (reason, rejected)
    good = "質問: そばは何から？\n回答: そばはそば粉から作る麺です。"
    kept, rejected = judge(good + "\n" + good, PASSAGE, QA, spans, cut=False)
    assert len(kept) == 1 and [r.reason for r in rejected] == ["duplicate"]
    assert kept[0].notes["grounding"] >= QA.grounding
    kept, rejected = judge(good + "\n質問: 何軒？\n回答: 五軒の", PASSAGE, QA, spans, cut=True)
    assert len(kept) == 1 and [r.reason for r in rejected] == ["cut_off"]
    assert check(Pair(["q", "a"]), "a", load_template("qa-en"), set()) is None


def test_the_backend_is_chosen_and_the_fallback_says_why(monkeypatch):
    """vLLM only when installed, with CUDA, for a full model; otherwise transformers with the
    reason, and an explicit request for vLLM that cannot be met is refused with it."""
    from studio.errors import InputError
    from studio.synth import generators

    def machine(vllm: bool, cuda: bool) -> None:
        monkeypatch.setattr(generators, "vllm_installed", lambda: vllm)
        monkeypatch.setattr(generators, "cuda_available", lambda: cuda)

    machine(vllm=False, cuda=False)
    assert generators.pick_backend("auto", adapter=False) == ("transformers", "no_vllm")
    assert generators.pick_backend("transformers", adapter=False) == ("transformers", "chosen")
    machine(vllm=True, cuda=False)
    assert generators.pick_backend("auto", adapter=False) == ("transformers", "no_cuda")
    machine(vllm=True, cuda=True)
    assert generators.pick_backend("auto", adapter=False) == ("vllm", "vllm")
    assert generators.pick_backend("auto", adapter=True) == ("transformers", "adapter")
    with pytest.raises(InputError) as err:
        generators.pick_backend("vllm", adapter=True)
    assert err.value.code == "vllm_adapter" and "統合" in err.value.text("ja")
    machine(vllm=False, cuda=True)
    with pytest.raises(InputError) as err:
        generators.pick_backend("vllm", adapter=False)
    assert err.value.code == "vllm_no_vllm" and "requirements-synth.txt" in str(err.value)


# --- the job -------------------------------------------------------------------------------
def test_a_job_writes_a_version_whose_rows_link_back_to_their_passages(workspace, corpus):
    from studio.data.registry import find_version
    from studio.data.store import open_version
    from studio.synth.job import execute, new_job

    def planted(passage):  # one pair that fails, on every third passage
        return "質問: 好きな色は？\n回答: 青色が一番好きです。\n" if len(passage) % 3 == 0 else ""

    job = new_job(workspace, settings_for(corpus.spec, limit=10))
    stand_in = ScriptedStandIn(extra=planted)
    status = execute(workspace, job, generator=stand_in, log=lambda _: None)
    assert status["state"] == "completed" and status["passages_done"] == 10
    assert status["accepted"] == 10
    report = job.report()
    failing = sum(1 for p in stand_in.asked if len(p) % 3 == 0)
    assert report["rejected"] == ({"not_grounded": failing} if failing else {})
    version = find_version(workspace, status["version"])
    assert version.parent == corpus.spec and version.operation == "synthesize"
    assert version.format == "messages" and version.counts["accepted"] == 10
    assert version.settings["template"] == "qa-ja" and version.settings["job"] == job.id
    rows = list(open_version(workspace, version))
    source = list(open_version(workspace, corpus))
    for row in rows:
        doc = source[row["source_row"]]
        assert doc["id"] == row["source_id"]
        passage = doc["text"][row["source_start"] : row["source_end"]]
        answer = row["messages"][1]["content"]
        assert "".join(answer.split()) in "".join(passage.split())  # taken from its passage
        assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
    assert [r["passage"] for r in rows] == list(range(10))
    # It is data like any other: deduplicated, and scanned by the label inspector.
    from studio.data.dedup import DedupSettings, dedup_version

    assert dedup_version(workspace, version.spec, DedupSettings()).to_dict()["counts"]["in"] == 10
    scanned = subprocess.run(
        [sys.executable, "-m", "studio", "inspect", "--workspace", str(workspace.root),
         "--data", version.spec, "--json"],
        capture_output=True, text=True, env=child_env(), timeout=300,
    )  # fmt: skip
    assert scanned.returncode == 0, scanned.stdout[-2000:]  # no error-level diagnostic
    found = json.loads(scanned.stdout)
    assert found["rows"] == 10 and found["trained_tokens"] > 0


def test_a_stopped_job_resumes_without_repeating_a_passage(workspace, corpus):
    from studio.data.registry import find_version
    from studio.data.store import open_version
    from studio.synth.job import execute, new_job

    job = new_job(workspace, settings_for(corpus.spec, name="resumed"))
    first = ScriptedStandIn(stop_after=2, job=job)
    status = execute(workspace, job, generator=first, log=lambda _: None)
    assert status["state"] == "stopped" and job.finished_batches() == {0, 1}
    assert len(first.asked) == 8
    job.clear_stop()
    second = ScriptedStandIn()
    status = execute(workspace, job, generator=second, log=lambda _: None)
    assert status["state"] == "completed" and len(second.asked) == 4
    assert not set(first.asked) & set(second.asked)  # nothing generated twice
    whole = new_job(workspace, settings_for(corpus.spec, name="whole"))
    execute(workspace, whole, generator=ScriptedStandIn(), log=lambda _: None)
    resumed = list(open_version(workspace, find_version(workspace, "resumed")))
    uninterrupted = list(open_version(workspace, find_version(workspace, "whole")))
    strip = lambda rows: [{k: v for k, v in r.items() if k != "id"} for r in rows]  # noqa: E731
    assert strip(resumed) == strip(uninterrupted)


def test_prompt_completion_rows_and_a_chat_template_refuses_them(workspace, corpus):
    from studio.data.registry import find_version
    from studio.data.store import open_version
    from studio.errors import InputError
    from studio.synth.job import execute, new_job

    job = new_job(workspace, settings_for(corpus.spec, limit=4, output="prompt_completion"))
    status = execute(workspace, job, generator=ScriptedStandIn(), log=lambda _: None)
    row = next(iter(open_version(workspace, find_version(workspace, status["version"]))))
    assert row["prompt"] == "本文の最初の文は何を述べていますか？" and row["completion"]
    with pytest.raises(InputError) as err:
        new_job(
            workspace,
            settings_for(
                corpus.spec, template=load_template("chat-ja").to_dict(), output="prompt_completion"
            ),
        )
    assert err.value.code == "chat_needs_messages"


def test_the_embedded_model_through_the_cli(workspace, corpus):
    """The real generator on CPU: its replies are judged and counted; too long a passage for
    its 512-token context is not sent. Nothing is written when no pair passes."""
    cmd = [sys.executable, "-m", "studio", "data", "synthesize", corpus.spec, "--workspace",
           str(workspace.root), "--model", "embedded", "--passages", "6", "--size", "250",
           "--overlap", "50", "--max-new-tokens", "64", "--batch-size", "3", "--json"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, env=child_env(), timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    assert out["state"] == "completed" and out["passages_done"] == 6
    assert out["backend"] == "transformers" and out["new_tokens"] > 0
    report = out["report"]
    assert report["pairs"] == out["accepted"] + sum(out["rejected"].values()) >= 6
    assert set(out["rejected"]) <= set(REASONS)
    if out["accepted"] == 0:
        assert out["reason"] == "no_pairs_accepted" and out["version"] is None
    too_long = subprocess.run(
        cmd[:-11] + ["--size", "3000", "--overlap", "0", "--passages", "2", "--max-new-tokens",
                     "256", "--json"],
        capture_output=True, text=True, env=child_env(), timeout=600,
    )  # fmt: skip
    out = json.loads(too_long.stdout)
    assert out["rejected"] == {"too_long": 2} and out["new_tokens"] == 0
    assert out["report"]["samples"]["too_long"][0]["prompt_tokens"] + 256 > 512
    bad = subprocess.run(
        cmd[:6] + ["--model", "embedded", "--template", "nope", "--json"],
        capture_output=True, text=True, env=child_env(), timeout=120,
    )  # fmt: skip
    assert bad.returncode != 0 and json.loads(bad.stdout)["error"]["code"] == "no_such_template"


def test_the_job_process_stops_is_killed_and_resumes(workspace, corpus):
    """The job in its own process (as the Data tab starts it): a stop ends it after a
    batch, SIGKILL mid-batch loses only that batch, and resume finishes the rest; no
    finished batch file is ever rewritten."""
    from studio.runs.launcher import stop, wait
    from studio.synth.job import new_job, progress_of, spawn_job

    job = new_job(workspace, settings_for(corpus.spec, limit=24, batch_size=2))
    spawn_job(job, workspace)
    wait_until(lambda: len(job.finished_batches()) >= 1, timeout=300)
    assert stop(job) == "stopping"
    assert wait(job, timeout=300) == "stopped"
    kept = {p.name: p.stat().st_mtime_ns for p in job.parts_dir.iterdir()}
    assert kept and len(kept) < 12
    spawn_job(job, workspace, resume=True)
    wait_until(lambda: len(job.finished_batches()) > len(kept), timeout=300)
    pgid = job.status().get("pid")
    os.killpg(os.getpgid(int(pgid)), signal.SIGKILL)
    assert wait(job, timeout=120) in ("failed", "interrupted")
    assert "SIGKILL" in str(progress_of(job).get("reason")) or job.state == "interrupted"
    spawn_job(job, workspace, resume=True)
    assert wait(job, timeout=600) == "completed"
    assert job.finished_batches() == set(range(12))
    for name, mtime in kept.items():
        assert (job.parts_dir / name).stat().st_mtime_ns == mtime  # never redone
    assert [r["passage"] for r in job.records()] == list(range(24))
    assert not list(job.parts_dir.glob(".*"))  # no half-written batch left behind


# --- the Data tab -------------------------------------------------------------------------------
@pytest.mark.client
def test_the_data_tab_starts_a_job_and_shows_its_report(running_app):
    from gradio_client import Client

    from studio.data.ingest import import_path
    from studio.workspace import open_workspace

    ws = open_workspace(running_app["workspace"])
    version, _ = import_path(ws, CORPUS, name="synth-corpus")
    client = Client(running_app["url"], verbose=False)
    form = [version.spec, "embedded", template_text("qa-ja"), "", 4, "chars", 250, 50, 2, 48,
            "auto", "messages", ""]  # fmt: skip
    job, line = client.predict(*form, "ja", api_name="/synth_start")
    job = job["value"] if isinstance(job, dict) else job
    assert job in line

    seen = {}

    def ended():
        seen["shown"], seen["report"] = client.predict(job, "ja", api_name="/synth_status")
        return "完了" in seen["shown"] or "失敗" in seen["shown"]

    wait_until(ended, timeout=300, poll=1)
    shown, report = seen["shown"], seen["report"]
    assert "完了" in shown and "パッセージ 4/4" in shown, shown
    assert "バックエンド: transformers" in shown
    assert "理由" in report and "件数" in report
    shown_en, report_en = client.predict(job, "en", api_name="/synth_status")
    assert "completed" in shown_en and "passages 4/4" in shown_en and "Reason" in report_en
    said = client.predict(job, "ja", api_name="/synth_stop")
    assert "動いていません" in said
    said = client.predict(job, "ja", api_name="/synth_resume")
    assert "完了しています" in said
    bad = form.copy()
    bad[2] = template_text("qa-ja").replace("{passage}", "{secret}")
    _, line = client.predict(*bad, "ja", api_name="/synth_start")
    assert "⚠️" in line and "プロンプトに {passage} がない" in line
    _, line = client.predict(None, *form[1:], "ja", api_name="/synth_start")
    assert "バージョンを選んで" in line
