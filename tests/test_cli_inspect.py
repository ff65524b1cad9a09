"""`python -m studio inspect`: the label inspector from the command line."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import yaml

from studio.cli import main
from tests.conftest import REPO, child_env

CHAT = REPO / "assets" / "data" / "chat_ojousama.jsonl"
BROKEN = ["--pad-token", "<|im_end|>", "--mask-pad-token-id"]
KANA = re.compile(r"[\u3040-\u30ff]")
DIAG_KEYS = {"code", "severity", "count", "rows", "message", "fix"}


@pytest.fixture
def ws(tmp_path) -> str:
    return str(tmp_path / "ws")


def run_cli(capsys, *argv) -> tuple[int, dict]:
    code = main(["inspect", *argv, "--json"])
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, f"--json must print exactly one line of JSON, got: {out!r}"
    return code, json.loads(lines[0])


def codes(payload: dict) -> dict:
    return {d["code"]: d for d in payload["diagnostics"]}


def test_clean_chat_set_exits_0_without_diagnostics(capsys, ws):
    code, payload = run_cli(capsys, "--data", str(CHAT), "--workspace", ws)
    assert code == 0 and payload["ok"] is True
    assert payload["diagnostics"] == [] and payload["blocked"] is False
    assert payload["rows"] == 330 and payload["data"] == "chat_ojousama.jsonl"
    assert payload["model"] == "tsumugi-tiny"
    assert 0 < payload["trained_ratio"] < 1
    assert payload["settings"]["max_length"] == payload["max_length"] == 1024
    assert payload["fixes"] == []


def test_error_exits_3_with_complete_diagnostics(capsys, ws):
    code, payload = run_cli(capsys, "--data", str(CHAT), "--workspace", ws, *BROKEN)
    assert code == 3 and payload["ok"] is True and payload["blocked"] is True
    assert "exit_code" not in payload
    for entry in payload["diagnostics"]:
        assert set(entry) >= DIAG_KEYS
        assert entry["count"] >= len(entry["rows"]) > 0
        assert entry["message"].strip() and entry["fix"].strip()
        assert entry["severity"] in {"error", "warning", "info"}
    masked = codes(payload)["eos_masked"]
    assert masked["severity"] == "error" and masked["count"] == 330
    assert "<|im_end|>" in masked["message"]
    assert {f["action"] for f in payload["fixes"]} >= {"dedicated_pad"}


def test_json_and_exit_status_in_a_real_process(ws):
    def inspect(*extra):
        return subprocess.run(
            [sys.executable, "-m", "studio", "inspect", "--data", str(CHAT), "--json"]
            + ["--workspace", ws, *extra],
            cwd=REPO,
            capture_output=True,
            text=True,
            env=child_env(),
            timeout=120,
        )

    out = inspect(*BROKEN)
    assert out.returncode == 3, out.stderr
    payload = json.loads(out.stdout)  # exactly one JSON object, nothing else on stdout
    assert payload["ok"] is True and "eos_masked" in codes(payload)


def test_workspace_dataset_by_name(capsys, ws):
    code, payload = run_cli(capsys, "--data", "sample-chat-ojousama", "--workspace", ws)
    assert code == 0 and payload["data"] == "sample-chat-ojousama/v0001"
    assert payload["rows"] == 330 and payload["diagnostics"] == []
    code, payload = run_cli(
        capsys, "--data", "sample-chat-ojousama/v0001", "--workspace", ws, "--limit", "10"
    )
    assert code == 0 and payload["rows"] == 10


def test_missing_inputs_are_clear_errors(capsys, ws, tmp_path):
    code, payload = run_cli(capsys, "--data", str(tmp_path / "none.jsonl"), "--workspace", ws)
    assert code == 1 and payload["ok"] is False
    assert "no file at" in payload["error"]["message"]
    code, payload = run_cli(capsys, "--data", "no-such-dataset", "--workspace", ws)
    assert code == 1 and "no dataset 'no-such-dataset'" in payload["error"]["message"]


def test_malformed_jsonl_names_the_line(capsys, ws, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{not json\n', encoding="utf-8")
    code, payload = run_cli(capsys, "--data", str(bad), "--workspace", ws)
    assert code == 1 and payload["ok"] is False
    message = payload["error"]["message"]
    assert "bad.jsonl, line 2" in message and "invalid JSON" in message
    odd = tmp_path / "odd.jsonl"
    odd.write_text('{"question": "?"}\n', encoding="utf-8")
    code, payload = run_cli(capsys, "--data", str(odd), "--workspace", ws)
    assert code == 1 and "no 'text'" in payload["error"]["message"]


def test_bad_settings_are_clear_errors(capsys, ws, tmp_path):
    typo = tmp_path / "typo.yaml"
    typo.write_text("max_lenght: 256\n", encoding="utf-8")
    code, payload = run_cli(capsys, "--data", str(CHAT), "--workspace", ws, "--settings", str(typo))
    assert code == 1 and "max_lenght" in payload["error"]["message"]
    code, payload = run_cli(capsys, "--data", str(CHAT), "--workspace", ws, "--max-length", "4")
    assert code == 1 and "max_length" in payload["error"]["message"]
    code, payload = run_cli(
        capsys, "--data", str(CHAT), "--workspace", ws, "--pad-token", "<nothing>"
    )
    assert code == 1 and "<nothing>" in payload["error"]["message"]
    broken = tmp_path / "broken.jinja"
    broken.write_text("{% for m in messages %}{{ m.content }", encoding="utf-8")
    code, payload = run_cli(
        capsys, "--data", str(CHAT), "--workspace", ws, "--chat-template", str(broken)
    )
    assert code == 1 and "chat template" in payload["error"]["message"]


def test_write_fixed_settings_make_the_next_run_clean(capsys, ws, tmp_path):
    fixed = tmp_path / "fixed.yaml"
    code, payload = run_cli(
        capsys, "--data", str(CHAT), "--workspace", ws, *BROKEN, "--write-fixed", str(fixed)
    )
    assert code == 3 and payload["fixed_settings"] == str(fixed)
    saved = yaml.safe_load(fixed.read_text(encoding="utf-8"))
    assert saved["encoding"]["pad_token"] == "<pad>"
    assert saved["encoding"]["mask_pad_token_id"] is False
    assert "dedicated_pad" in saved["fixes"]
    code, payload = run_cli(
        capsys, "--data", str(CHAT), "--workspace", ws, "--settings", str(fixed)
    )
    assert code == 0 and payload["diagnostics"] == []
    assert payload["settings"]["pad_token"] == "<pad>"


def test_japanese_messages(capsys, ws):
    _, en = run_cli(capsys, "--data", str(CHAT), "--workspace", ws, *BROKEN)
    _, ja = run_cli(capsys, "--data", str(CHAT), "--workspace", ws, *BROKEN, "--lang", "ja")
    assert [d["code"] for d in ja["diagnostics"]] == [d["code"] for d in en["diagnostics"]]
    for j, e in zip(ja["diagnostics"], en["diagnostics"], strict=True):
        assert KANA.search(j["message"]) and KANA.search(j["fix"])
        assert not KANA.search(e["fix"]) and e["message"][0].isascii()
        assert j["message"] != e["message"]


def test_human_output_and_show_row(capsys, ws):
    assert main(["inspect", "--data", str(CHAT), "--workspace", ws, "--show-row", "0"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("chat_ojousama.jsonl: 330 rows") and "no problems found" in out
    reply = json.loads(CHAT.read_text(encoding="utf-8").splitlines()[0])["messages"][-1]
    assert f"trained text: {reply['content']}<|im_end|>" in out
    assert re.search(r"^\s+0\s+1\s+-100\s+masked\s+'<s>'$", out, re.M)  # BOS, masked
    assert main(["inspect", "--data", str(CHAT), "--workspace", ws, *BROKEN]) == 3
    out = capsys.readouterr().out
    assert "[error] eos_masked (330 rows: 0, 1, 2" in out and "    fix: " in out


def test_show_row_in_json(capsys, ws):
    code, payload = run_cli(
        capsys, "--data", str(CHAT), "--workspace", ws, "--show-row", "2", "--limit", "5"
    )
    assert code == 0 and len(payload["row"]) == 1
    seq = payload["row"][0]
    assert len(seq["input_ids"]) == len(seq["labels"]) == len(seq["position_ids"])
    assert seq["rows"][0]["row"] == 2 and seq["labels"][0] == -100
    assert seq["attention_mask"] == [1] * len(seq["input_ids"])
