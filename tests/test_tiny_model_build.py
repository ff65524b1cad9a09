"""The embedded model is reproducible: its build script runs (a few steps here) and produces a
folder that plain transformers loads offline, with the tokenizer and template we rely on."""

import json
import subprocess
import sys

import pytest

from studio.paths import EMBEDDED_MODEL_DIR
from tests.conftest import REPO, child_env

pytestmark = pytest.mark.slow


def test_build_script_smoke(tmp_path):
    out_dir = tmp_path / "tiny"
    proc = subprocess.run(
        [
            sys.executable,
            "assets/build_tiny_model.py",
            "--out",
            str(out_dir),
            "--max-steps",
            "3",
            "--threads",
            "1",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(out_dir)
    model = AutoModelForCausalLM.from_pretrained(out_dir)
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<s>", "</s>", "<pad>")
    assert "{% generation %}" in tok.chat_template
    assert model.config.vocab_size == len(tok)
    text = "紡ぎスタジオで富士山を学ぶ。"
    assert tok.decode(tok(text)["input_ids"], skip_special_tokens=True) == text
    summary = json.loads((out_dir / "training_summary.json").read_text(encoding="utf-8"))
    assert summary["steps"] == 3
    assert not list(tmp_path.glob(".*")), "temporary build folders left behind"


def test_bundled_model_matches_its_summary():
    summary = json.loads((EMBEDDED_MODEL_DIR / "training_summary.json").read_text("utf-8"))
    config = json.loads((EMBEDDED_MODEL_DIR / "config.json").read_text("utf-8"))
    assert summary["vocab_size"] == config["vocab_size"]
    assert "build_tiny_model.py" in summary["rebuild_command"]
    assert summary["final_train_loss"] < 6.0  # it learned something from the corpus
