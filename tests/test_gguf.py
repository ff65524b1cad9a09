"""GGUF export through llama.cpp's own converter and quantizer, and its self-check, on a short
CPU demo fine-tune of the embedded model; the Ollama Modelfile; the refusals.

The tests that run llama.cpp need the GGUF extra (`python -m studio install-gguf`, which the
README's test command runs). Without it they are skipped, unless STUDIO_REQUIRE_GGUF is set
(CI sets it), where a missing extra fails them."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from studio.export import llama_cpp
from studio.export.gguf import (
    GGUFError,
    declared_pre,
    export_gguf,
    gguf_models,
    register_ollama,
    training_template,
)
from studio.export.ollama import go_template, modelfile, template_matches, template_parts
from studio.paths import EMBEDDED_MODEL_DIR
from tests.conftest import REPO, child_env

IM_END = 5  # <|im_end|> in the embedded tokenizer


def needs_llama_cpp():
    gaps = llama_cpp.missing()
    if gaps:
        if os.environ.get("STUDIO_REQUIRE_GGUF"):
            pytest.fail("the GGUF extra is required here: " + "; ".join(gaps))
        pytest.skip("the GGUF extra is not installed (python -m studio install-gguf)")


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    from studio.workspace import open_workspace

    return open_workspace(tmp_path_factory.mktemp("gguf") / "ws")


@pytest.fixture(scope="module")
def run(ws):
    """The CPU demo SFT, short, holding 7 % of the persona set out (23 rows)."""
    from studio.train import presets
    from studio.train.process import execute
    from studio.train.start import prepare_run

    config, preset = presets.load(
        "cpu-demo-sft",
        ["max_steps=12", "save_steps=100", "eval_steps=100", "validation_split=0.07"],  # fmt: skip
    )
    run = prepare_run(ws, config, preset=preset)
    assert execute(run, ws) == 0, run.log_tail()
    return run


@pytest.fixture(scope="module")
def exported(ws, run):
    needs_llama_cpp()
    return export_gguf(ws, run.id, quants=["f16", "q8_0"], name="demo-gguf")


# --- without llama.cpp ------------------------------------------------------------------------
def test_without_the_extra_the_cli_says_the_install_command(ws, run, tmp_path):
    env = child_env(STUDIO_LLAMA_CPP_TOOLS=str(tmp_path / "none"))
    done = subprocess.run(
        [sys.executable, "-m", "studio", "export", run.id, "--gguf", "--workspace",
         str(ws.root), "--json"],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    error = json.loads(done.stdout)["error"]
    assert error["code"] == "gguf_missing"
    assert "python -m studio install-gguf" in error["message"]
    assert not [p for p in ws.models.iterdir() if p.name.startswith(".")]  # nothing half-made


def test_training_markers_leave_the_template_and_the_embedded_pre_tokenizer_is_named():
    template = (EMBEDDED_MODEL_DIR / "chat_template.jinja").read_text(encoding="utf-8")
    assert "{% generation %}" in template and "{% endgeneration %}" in template
    clean = training_template(template)
    assert "generation %}" not in clean and "<|im_end|>" in clean
    assert clean == template.replace("{% generation %}", "").replace("{% endgeneration %}", "")
    assert declared_pre(EMBEDDED_MODEL_DIR) == "gpt-2"  # byte-level BPE with GPT-2's split


def test_modelfile_template_reproduces_the_training_template():
    from studio.models.load import load_tokenizer, resolve_source

    tok = load_tokenizer(resolve_source(""))
    parts = template_parts(tok, strip_bos=True)
    assert template_matches(tok, parts, strip_bos=True) == []
    assert parts.user_before == "<|im_start|>user\n" and parts.user_after == "<|im_end|>\n"
    assert parts.generation == "<|im_start|>assistant\n" and parts.start == ""  # BOS left out
    text = modelfile("m-q8_0.gguf", ["</s>", "<|im_end|>"], parts)
    assert text.startswith("FROM ./m-q8_0.gguf\n")
    assert 'PARAMETER stop "<|im_end|>"' in text and 'PARAMETER stop "</s>"' in text
    assert "{{ .Content }}" in go_template(parts) and "<s>" not in go_template(parts)
    # The GGUF would not add BOS: then the template writes it.
    kept = template_parts(tok, strip_bos=False)
    assert kept.start == "<s>" and template_matches(tok, kept, strip_bos=False) == []


def test_modelfile_template_for_real_families():
    from tests.real_families import require, tokenizer

    for name, user_before, stop in (
        ("qwen2.5", "<|im_start|>user\n", "<|im_end|>"),
        ("llama-3.1", "<|start_header_id|>user<|end_header_id|>\n\n", "<|eot_id|>"),
    ):
        require(name)
        tok = tokenizer(name)
        parts = template_parts(tok, strip_bos=True)
        assert template_matches(tok, parts, strip_bos=True) == [], name
        assert parts.user_before.endswith(user_before), name
        assert stop in parts.assistant_after, name
        if name == "qwen2.5":  # its default system prompt is kept when there is none
            assert "You are Qwen" in parts.start and parts.system_before.endswith("system\n")


# --- with llama.cpp ---------------------------------------------------------------------------
def test_gguf_export_passes_its_self_check(ws, run, exported):
    import gguf

    assert exported.status == "ok", exported.reason
    assert exported.path == ws.models / "demo-gguf"
    report = exported.check
    assert report["source"].startswith(f"{run.id}: held-out rows")
    f16, q8 = report["results"]
    assert (f16["quant"], q8["quant"]) == ("f16", "q8_0")
    for r in (f16, q8):
        assert r["prompts"] == 20
        assert r["tokens_identical"] and r["token_differences"] == []
        assert r["stop_ids_not_eog"] == [] and set(r["stop_ids"]) == {2, IM_END}
        assert r["perplexity_ratio"] is not None
    assert f16["verdict"] == "pass" and f16["greedy_agreement"] == 1.0
    assert abs(f16["perplexity_ratio"] - 1) < 0.02
    assert f16["hf_stopped"] == f16["gguf_stopped"]
    assert q8["bytes"] < f16["bytes"]
    # The metadata llama.cpp reads.
    reader = gguf.GGUFReader(str(exported.path / exported.files["q8_0"]))
    fields = {k: f.contents() for k, f in reader.fields.items() if not k.startswith("tokenizer.ggml.t")
              and k not in ("tokenizer.ggml.merges", "tokenizer.ggml.scores")}  # fmt: skip
    assert fields["tokenizer.ggml.eot_token_id"] == IM_END
    assert fields["tokenizer.ggml.eos_token_id"] == 2 and fields["tokenizer.ggml.bos_token_id"] == 1
    assert fields["tokenizer.ggml.pre"] == "gpt-2"
    assert "<|im_end|>" in fields["tokenizer.chat_template"]
    assert "generation %}" not in fields["tokenizer.chat_template"]
    # Beside it.
    record = json.loads((exported.path / "gguf_export.json").read_text(encoding="utf-8"))
    assert record["status"] == "ok" and record["pre_tokenizer_declared"] is True
    stored = json.loads((exported.path / "gguf_check.json").read_text(encoding="utf-8"))
    assert stored["verdict"] == report["verdict"]
    text = (exported.path / "Modelfile").read_text(encoding="utf-8")
    assert text.startswith(f"FROM ./{exported.files['q8_0']}\n")
    assert 'PARAMETER stop "<|im_end|>"' in text and "TEMPLATE" in text
    card = (exported.path / "README.md").read_text(encoding="utf-8")
    assert "Self-check passed" in card and "| f16 | pass |" in card
    assert not [p for p in ws.models.iterdir() if p.name.startswith(".")]


def test_exported_gguf_runs_in_the_compare_path_like_the_model(ws, run, exported):
    from studio.compare import compare
    from studio.generate import GenerationSettings
    from studio.models.pool import ModelPool, pool_opener

    listed = gguf_models(ws.models)
    assert set(listed) == {"demo-gguf:f16", "demo-gguf:q8_0"}
    opener = pool_opener(ws, ModelPool(max_models=3))
    prompts = ["お茶の淹れ方を教えてください。", "こんにちは。"]
    grid = compare(opener, [f"run:{run.id}", "demo-gguf:f16"], prompts,
                   GenerationSettings(max_new_tokens=24, greedy=True), chat=True)  # fmt: skip
    for index in range(len(prompts)):
        hf, gguf_cell = grid.cell(f"run:{run.id}", index), grid.cell("demo-gguf:f16", index)
        assert gguf_cell.error is None, gguf_cell.error
        assert gguf_cell.text == hf.text and gguf_cell.stop_reason == hf.stop_reason


def test_cli_gguf_export_with_a_fake_ollama(ws, run, tmp_path):
    needs_llama_cpp()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.json"
    fake = bin_dir / "ollama"
    fake.write_text(
        "#!" + sys.executable + "\n"
        "import json, os, sys\n"
        "args = sys.argv[1:]\n"
        "text = open(args[args.index('-f') + 1], encoding='utf-8').read()\n"
        "source = text.splitlines()[0].split(' ', 1)[1]\n"
        f"json.dump({{'args': args, 'from_exists': os.path.isfile(source)}}, open({str(calls)!r}, 'w'))\n",
        encoding="utf-8",
    )  # fmt: skip
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = child_env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run(
        [sys.executable, "-m", "studio", "export", f"{run.id}@12", "--gguf", "--quant", "q4_k_m",
         "--name", "cli-gguf", "--no-check", "--ollama", "My Demo", "--workspace", str(ws.root), "--json"],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    payload = json.loads(done.stdout)
    assert payload["ok"] and payload["status"] == "unchecked" and payload["check"] is None
    assert payload["files"] == {"q4_k_m": "cli-gguf-q4_k_m.gguf"}
    assert payload["ollama"] == "my-demo"
    seen = json.loads(calls.read_text())
    assert seen["args"][:2] == ["create", "my-demo"] and seen["from_exists"]
    # The library refuses an export that is not one.
    with pytest.raises(GGUFError):
        register_ollama(ws, run.id)


def test_a_tokenizer_the_converter_does_not_know_is_refused_clearly(ws):
    needs_llama_cpp()
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{c: i + 3 for i, c in enumerate("abcdefgh ")}}
    raw = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()  # not a split llama.cpp can name
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<s>", eos_token="</s>",
                                  unk_token="<unk>")  # fmt: skip
    folder = ws.models / "odd-tokenizer"
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2)  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    before = sorted(p.name for p in ws.models.iterdir())
    with pytest.raises(GGUFError) as caught:
        export_gguf(ws, "odd-tokenizer", quants=["f16"])
    assert caught.value.code == "gguf_tokenizer_unknown"
    assert "does not recognise this tokenizer" in str(caught.value)
    assert "語彙" not in caught.value.text("ja") and "トークナイザ" in caught.value.text("ja")
    assert sorted(p.name for p in ws.models.iterdir()) == before  # nothing left behind


def test_install_keeps_the_converter_from_the_sdist(tmp_path, monkeypatch):
    """The converter's files come out of a source distribution, and nothing else does."""
    import io
    import tarfile

    sdist = tmp_path / f"llama_cpp_python-{llama_cpp.VERSION}.tar.gz"
    root = f"llama_cpp_python-{llama_cpp.VERSION}/vendor/llama.cpp/"
    with tarfile.open(sdist, "w:gz") as tar:
        for name in ("convert_hf_to_gguf.py", "conversion/base.py", "gguf-py/gguf/__init__.py",
                     "src/llama.cpp", "../evil.py"):  # fmt: skip
            data = b"# " + name.encode()
            info = tarfile.TarInfo(root + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    into = tmp_path / "tools"
    llama_cpp.extract_converter(sdist, into)
    kept = sorted(str(p.relative_to(into)) for p in into.rglob("*") if p.is_file())
    assert kept == ["SOURCE.json", "conversion/base.py", "convert_hf_to_gguf.py",
                    "gguf-py/gguf/__init__.py"]  # fmt: skip
    assert not (tmp_path / "evil.py").exists()
    monkeypatch.setenv(llama_cpp.TOOLS_ENV, str(into))
    assert llama_cpp.converter_path() == Path(into) / "convert_hf_to_gguf.py"


@pytest.mark.client
@pytest.mark.slow
def test_export_tab_writes_a_checked_gguf_that_the_compare_tab_runs(ws, run, tmp_path):
    """Through the running app: the Export tab's GGUF export, then the Compare tab with the
    fine-tune and its GGUF side by side."""
    needs_llama_cpp()
    from gradio_client import Client

    from tests.conftest import app_process

    with app_process(ws.root, tmp_path / "app.log") as app:
        client = Client(app["url"], analytics_enabled=False, verbose=False)
        status = client.predict(run.id, ["q8_0"], "tab-gguf", True, "ja",
                                api_name="/export_gguf")  # fmt: skip
        assert "**tab-gguf**" in status and "自己チェック合格" in status, status
        assert "| q8_0 |" in status and "一致" in status
        _, _, done, *_ = client.predict(
            [f"run:{run.id}", "tab-gguf:q8_0"], "お茶の淹れ方は？\nこんにちは。", True, "",
            16, True, 0.8, 0.95, 1.0, 0, "en", api_name="/compare_models",
        )  # fmt: skip
        assert "Done: 4 replies (0 failed)" in done, done
        forged = client.predict("../../etc", ["q8_0"], "", True, "en", api_name="/export_gguf")
        assert "No such run or model here" in forged


def test_a_real_llama3_tokenizer_converts_and_checks(ws):
    """A tiny Llama-3.1 with the real tokenizer and template (tests/real_families.py): the
    converter knows its pre-tokenizer, llama.cpp splits the prompts into the same ids, stops on
    <|eot_id|>, and the Modelfile leaves BOS to llama.cpp."""
    needs_llama_cpp()
    import shutil

    from tests.real_families import require

    shutil.copytree(require("llama-3.1"), ws.models / "llama3-tiny")
    done = export_gguf(ws, "llama3-tiny", quants=["f16"], prompts=["日本の首都は？", "Hi!"])
    record = json.loads((done.path / "gguf_export.json").read_text(encoding="utf-8"))
    assert record["pre_tokenizer"] == "llama-bpe" and not record["pre_tokenizer_declared"]
    assert record["adds_bos"] and record["ollama_template"]
    (result,) = done.check["results"]
    assert result["tokens_identical"] and result["prompts"] == 2
    assert result["stop_ids"] == [128009] and result["stop_ids_not_eog"] == []
    assert result["greedy_agreement"] == 1.0 and done.status == "ok"
    text = (done.path / "Modelfile").read_text(encoding="utf-8")
    assert 'PARAMETER stop "<|eot_id|>"' in text and "<|begin_of_text|>" not in text


def test_a_file_llama_cpp_cannot_load_fails_the_check_without_taking_the_caller_down(
    tmp_path, exported
):
    from studio.export.gguf import default_inputs
    from studio.export.gguf_check import self_check
    from studio.models.load import load_tokenizer, resolve_source

    whole = exported.path / exported.files["f16"]
    broken = tmp_path / "broken-f16.gguf"
    broken.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    inputs = default_inputs(load_tokenizer(resolve_source("")), [2, IM_END],
                            prompts=["こんにちは。"])  # fmt: skip
    report = self_check(EMBEDDED_MODEL_DIR, {"f16": broken}, inputs)
    (result,) = report["results"]
    assert report["verdict"] == "fail" and result["defects"] == ["llama_cpp_crashed"]
    assert result["crash"]  # llama.cpp's own words
