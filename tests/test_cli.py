import json
import subprocess
import sys

import pytest

from studio.cli import build_parser, main
from tests.conftest import REPO, child_env

VERBS = ["init", "env", "datasets list", "model info", "generate"]


def run_cli(capsys, *argv) -> tuple[int, dict]:
    code = main(list(argv))
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, f"--json must print exactly one line of JSON, got: {out!r}"
    return code, json.loads(lines[0])


def test_help_lists_verbs_in_a_fresh_process():
    out = subprocess.run(
        [sys.executable, "-m", "studio", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert out.returncode == 0
    for verb in ("init", "env", "datasets", "model", "generate"):
        assert verb in out.stdout


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_takes_workspace_and_json(verb, capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([*verb.split(), "--help"])
    assert exc.value.code == 0
    help_text = capsys.readouterr().out
    assert "--workspace" in help_text and "--json" in help_text


def test_usage_error_exits_2(capsys):
    assert main(["generate", "--json"]) == 2  # needs --prompt or --prompts


def test_init_and_datasets_list(tmp_path, capsys):
    code, payload = run_cli(capsys, "init", "--workspace", str(tmp_path / "w"), "--json")
    assert code == 0 and payload["ok"] is True
    assert (tmp_path / "w" / "runs").is_dir()
    code, payload = run_cli(
        capsys, "datasets", "list", "--workspace", str(tmp_path / "w"), "--json"
    )
    assert {d["name"] for d in payload["datasets"]} >= {"sample-corpus", "sample-chat-ojousama"}
    assert {s["name"] for s in payload["eval_suites"]} == {"sample-eval-qa", "sample-eval-rank"}


def test_env(capsys, tmp_path):
    code, payload = run_cli(capsys, "env", "--workspace", str(tmp_path), "--json")
    assert code == 0
    assert payload["device"]["device"] == "cpu"
    assert payload["device"]["backend"] == "transformers+peft+trl"
    assert payload["versions"]["transformers"] == "5.17.0"


def test_model_info_json(capsys, tmp_path):
    code, payload = run_cli(capsys, "model", "info", "--workspace", str(tmp_path), "--json")
    assert code == 0
    assert payload["architecture"] == "LlamaForCausalLM"
    assert payload["chat_template"]["has_generation_markers"] is True


def test_generate_is_deterministic_and_human_output_works(capsys, tmp_path):
    args = [
        "generate",
        "--prompt",
        "富士山は",
        "--greedy",
        "--max-new-tokens",
        "12",
        "--workspace",
        str(tmp_path),
    ]
    _, first = run_cli(capsys, *args, "--json")
    _, second = run_cli(capsys, *args, "--json")
    assert first["results"][0]["text"] == second["results"][0]["text"]
    assert first["results"][0]["new_tokens"] > 0
    assert main(args) == 0
    human = capsys.readouterr().out
    assert human.startswith("### 富士山は") and "stop:" in human


def test_generate_from_prompt_files(capsys, tmp_path):
    txt = tmp_path / "p.txt"
    txt.write_text("富士山は\n\n抹茶は\n", encoding="utf-8")
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text('{"prompt": "今日は"}\n', encoding="utf-8")
    ws = str(tmp_path / "w")
    _, payload = run_cli(
        capsys,
        "generate",
        "--prompts",
        str(txt),
        "--max-new-tokens",
        "4",
        "--workspace",
        ws,
        "--json",
    )
    assert [r["prompt"] for r in payload["results"]] == ["富士山は", "抹茶は"]
    _, payload = run_cli(
        capsys,
        "generate",
        "--prompts",
        str(jsonl),
        "--max-new-tokens",
        "4",
        "--chat",
        "--workspace",
        ws,
        "--json",
    )
    assert payload["results"][0]["prompt"] == "今日は"


@pytest.mark.parametrize(
    "args,match",
    [
        (["--model", "nobody/offline-model", "--prompt", "x"], "HF_HUB_OFFLINE"),
        (["--model", "./no/such/folder", "--prompt", "x"], "No model folder"),
        (["--prompt", "x", "--max-new-tokens", "0"], "max_new_tokens"),
    ],
)
def test_generate_failures_are_json_errors(args, match, capsys, tmp_path):
    code, payload = run_cli(capsys, "generate", *args, "--workspace", str(tmp_path), "--json")
    assert code == 1 and payload["ok"] is False
    assert match in payload["error"]["message"]


def test_bad_prompt_file(capsys, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json}\n", encoding="utf-8")
    code, payload = run_cli(
        capsys, "generate", "--prompts", str(bad), "--workspace", str(tmp_path), "--json"
    )
    assert code == 1 and "bad.jsonl:1" in payload["error"]["message"]


def test_json_stdout_is_clean_in_a_real_process(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "studio",
            "generate",
            "--prompt",
            "抹茶",
            "--max-new-tokens",
            "4",
            "--workspace",
            str(tmp_path),
            "--json",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["ok"] is True


def test_train_check_is_not_ok_when_it_could_not_check(tmp_path, capsys):
    ws = str(tmp_path / "w")
    args = ["train", "cpu-demo-sft", "--check", "--workspace", ws, "--json"]
    code, payload = run_cli(capsys, *args, "--set", f"model={tmp_path / 'no-such-model'}")
    assert code == 1 and payload["ok"] is False and payload["scan"] is None
    code, payload = run_cli(capsys, *args)
    assert code == 0 and payload["ok"] is True and payload["scan"]["trained_tokens"] > 0
