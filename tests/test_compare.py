"""Side-by-side generation, the model pool (adapters sharing a base), streaming chat and its
warnings, personas and conversation export; the `generate` verb with adapters."""

from __future__ import annotations

import csv
import io
import json
import weakref

import pytest
import torch

from studio.chat import (
    ChatError,
    conversation_row,
    delete_persona,
    export_jsonl,
    personas,
    reply,
    save_as_dataset,
    save_persona,
)
from studio.compare import (
    PromptsError,
    compare,
    distinct_n,
    longest_repeat,
    parse_prompts,
    read_prompts,
    repetition,
)
from studio.generate import GenerationResult, GenerationSettings, generate, reply_warnings, stream
from studio.models.load import ModelLoadError, load_model, resolve_source
from studio.models.pool import ModelPool, gpu_room_message, tensor_bytes
from tests.conftest import make_adapter

GREEDY = GenerationSettings(max_new_tokens=16, greedy=True)


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    return [make_adapter(root / f"ad{i}", seed=i) for i in (1, 2, 3)]


# --- repetition -----------------------------------------------------------------------
def test_repetition_figures_by_hand():
    assert distinct_n("abab", 2) == pytest.approx(2 / 3)  # ab, ba, ab
    assert distinct_n("a", 2) == 1.0
    assert longest_repeat("abcXabcY") == "abc"
    assert longest_repeat("aaaa") == "aaa"  # overlapping repeats count
    assert longest_repeat("abcd") == ""
    loop = repetition("お茶が好きです。お茶が好きです。お茶が好きです。")
    assert loop["longest_repeat"] == "お茶が好きです。お茶が好きです。"
    assert loop["repeat_share"] == pytest.approx(16 / 24, abs=1e-3)
    assert loop["repetitive"] is True
    fine = repetition("富士山は日本で一番高い山で、標高は3776メートルあります。")
    assert fine["repetitive"] is False and fine["distinct_2"] > 0.9
    assert repetition("はいはい")["repetitive"] is False  # too short to judge


def test_prompts_from_text_and_files(tmp_path):
    assert parse_prompts("a\n\n b \n") == ["a", "b"]
    assert parse_prompts('{"prompt": "x"}\n{"prompt": "y"}') == ["x", "y"]
    with pytest.raises(PromptsError, match="p:2"):
        parse_prompts('{"prompt": "x"}\n{"q": 1}', source="p")
    with pytest.raises(PromptsError, match="no prompts"):
        parse_prompts("\n \n")
    sjis = tmp_path / "p.txt"
    sjis.write_bytes("富士山".encode("cp932"))
    with pytest.raises(PromptsError, match="not UTF-8"):
        read_prompts(sjis)
    bom = tmp_path / "bom.txt"
    bom.write_bytes("\ufeff富士山は\n抹茶は".encode())
    assert read_prompts(bom) == ["富士山は", "抹茶は"]


# --- the pool -------------------------------------------------------------------------
def test_adapters_share_one_base_and_switching_matches_loading_alone(adapters, embedded):
    ids = embedded.tokenizer("こんにちは、今日は", return_tensors="pt")["input_ids"]

    def logits(model):
        with torch.inference_mode():
            return model(input_ids=ids).logits

    alone = {}
    for folder in adapters:
        loaded = load_model(resolve_source(str(folder)))
        alone[folder] = (logits(loaded.model), generate(loaded, "富士山は", GREEDY).text)
    base_logits = logits(embedded.model)
    pool = ModelPool()
    for folder in [*adapters, adapters[1], adapters[0]]:  # switch back and forth
        with pool.use(resolve_source(str(folder))) as loaded:
            assert torch.allclose(logits(loaded.model), alone[folder][0], atol=1e-5)
            assert generate(loaded, "富士山は", GREEDY).text == alone[folder][1]
    with pool.use(resolve_source("")) as loaded:  # the base: adapters disabled
        assert torch.allclose(logits(loaded.model), base_logits, atol=1e-5)
    assert len({tuple(a[1]) for a in alone.values()}) == 3  # three really different models

    [held] = pool.loaded()
    assert held["adapters"] == ["ad1", "ad2", "ad3"]
    base_bytes = tensor_bytes(embedded.model)
    adapter_bytes = sum(
        (f / "adapter_model.safetensors").stat().st_size for f in adapters
    )  # fp32 on disk and in memory
    assert held["bytes"] == pytest.approx(base_bytes + adapter_bytes, rel=0.02)

    model_ref = weakref.ref(loaded.model)
    del loaded  # the caller's own reference; the pool must hold no other
    assert pool.unload() == ["tsumugi-tiny"]
    assert pool.loaded() == [] and model_ref() is None  # really gone


def test_least_recently_used_base_is_unloaded(tmp_path, embedded):
    copy = tmp_path / "copy"
    embedded.model.save_pretrained(copy)
    embedded.tokenizer.save_pretrained(copy)
    pool = ModelPool(max_models=1)
    with pool.use(resolve_source("")):
        pass
    with pool.use(resolve_source(str(copy))):
        pass
    assert [m["model"] for m in pool.loaded()] == ["copy"]


def test_adapter_over_a_missing_base_is_refused_clearly(tmp_path, adapters):
    moved = tmp_path / "moved"
    moved.mkdir()
    for f in adapters[0].iterdir():
        (moved / f.name).write_bytes(f.read_bytes())
    config = json.loads((moved / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "/nowhere/some-model"
    (moved / "adapter_config.json").write_text(json.dumps(config))
    pool = ModelPool()
    with (
        pytest.raises(ModelLoadError, match="adapter over '/nowhere/some-model'"),
        pool.use(resolve_source(str(moved))),
    ):
        pass


def test_a_model_is_not_put_beside_a_training_run_that_needs_the_gpu():
    gib = 1024**3
    assert gpu_room_message("m", 2 * gib, 24 * gib, 20 * gib, []) is None
    assert gpu_room_message("m", 2 * gib, 24 * gib, 20 * gib, [("r1", 10 * gib)]) is None
    msg = gpu_room_message("m", 8 * gib, 24 * gib, 10 * gib, [("r1", 18 * gib)])
    assert "r1" in msg and "both do not fit" in msg
    # what is in use now counts when it is more than the estimate said
    assert gpu_room_message("m", 8 * gib, 24 * gib, 4 * gib, [("r1", 6 * gib)])
    assert "cannot be estimated" in gpu_room_message("m", None, 24 * gib, 20 * gib, [("r", 1)])


# --- side by side -----------------------------------------------------------------------
def test_grid_is_reproducible_and_exports(adapters, tmp_path):
    pool = ModelPool()
    names = {"base": "", "tuned": str(adapters[0])}

    def open_model(name):
        return pool.use(resolve_source(names[name]))

    sampled = GenerationSettings(max_new_tokens=12, temperature=1.0, seed=7)
    prompts = ["富士山は", "抹茶は"]
    first = compare(open_model, ["base", "tuned"], prompts, sampled, chat=False)
    again = compare(open_model, ["base", "tuned"], prompts, sampled, chat=False)
    assert [c.text for c in first.cells] == [c.text for c in again.cells]
    assert [(c.model, c.prompt_index) for c in first.cells] == [
        ("base", 0),
        ("base", 1),
        ("tuned", 0),
        ("tuned", 1),
    ]
    assert first.cell("tuned", 1).text != first.cell("base", 1).text
    rows = list(csv.DictReader(io.StringIO(first.to_csv())))
    assert len(rows) == 4 and rows[0]["stop_reason"] in {"eos", "length"}
    md = first.to_markdown().splitlines()
    assert md[0] == "| prompt | base | tuned |" and len(md) == 2 + len(prompts)
    assert all(s["replies"] == 2 for s in first.summary())


def test_a_model_that_cannot_load_fills_its_column_with_the_error():
    pool = ModelPool()

    def open_model(name):
        return pool.use(resolve_source(name))

    result = compare(open_model, ["", "./no/such/model"], ["こんにちは"], GREEDY)
    assert result.cell("", 0).error is None
    assert "No model folder" in result.cell("./no/such/model", 0).error
    with pytest.raises(ModelLoadError):
        compare(open_model, ["./no/such/model"], ["x"], GREEDY, keep_going=False)


# --- chat -------------------------------------------------------------------------------
def test_stream_grows_and_ends_with_the_same_reply_as_generate(embedded):
    settings = GenerationSettings(max_new_tokens=24, greedy=True)
    pieces = list(stream(embedded, "富士山は", settings))
    *texts, result = pieces
    assert isinstance(result, GenerationResult)
    assert len(texts) >= 3 and all(b.startswith(a) for a, b in zip(texts, texts[1:], strict=False))
    assert texts[-1] == result.text == generate(embedded, "富士山は", settings).text
    assert result.first_token_seconds is not None and result.first_token_seconds < result.seconds


def test_reply_warnings(embedded):
    tok = embedded.tokenizer
    assert reply_warnings(tok, "ごきげんよう。", "eos") == []
    assert reply_warnings(tok, "ごきげんよう。", "length") == ["length_no_eos"]
    # while sampling a long reply can be chance: the warning says to try greedy first
    assert reply_warnings(tok, "ごきげんよう。", "length", sampled=True) == [
        "length_no_eos_sampled"
    ]
    assert reply_warnings(tok, "ごきげんよう。</s>", "eos") == ["literal_eos"]
    assert "literal_eos" in reply_warnings(tok, "はい<|im_end|>\nuser", "length")
    cut = GenerationSettings(max_new_tokens=2, greedy=False, seed=1)  # the chat's default
    assert generate(embedded, "富士山は", cut).warnings == ["length_no_eos_sampled"]


def test_chat_reply_continues_the_conversation(embedded):
    history = [
        {"role": "user", "content": "こんにちは"},
        {"role": "assistant", "content": [{"type": "text", "text": "ごきげんよう"}]},
    ]
    settings = GenerationSettings(max_new_tokens=8, greedy=True)
    *_, result = reply(embedded, history, "お元気？", settings, system="丁寧に")
    messages = [
        {"role": "system", "content": "丁寧に"},
        {"role": "user", "content": "こんにちは"},
        {"role": "assistant", "content": "ごきげんよう"},
        {"role": "user", "content": "お元気？"},
    ]
    assert result.text == generate(embedded, settings=settings, messages=messages).text
    with pytest.raises(ChatError):
        list(reply(embedded, [], "  ", settings))


def test_personas_and_conversations(workspace):
    assert "お嬢様 / Ojousama (demo)" in personas(workspace)
    found = save_persona(workspace, "  先生  ", "あなたは優しい先生です。")
    assert found["先生"] == "あなたは優しい先生です。"
    with pytest.raises(ChatError):
        save_persona(workspace, " ", "x")
    with pytest.raises(ChatError, match="bundled"):
        delete_persona(workspace, "お嬢様 / Ojousama (demo)")
    assert "先生" not in delete_persona(workspace, "先生")

    history = [{"role": "user", "content": "こんにちは"}, {"role": "assistant", "content": "はい"}]
    row = conversation_row(history, "丁寧に")
    assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
    with pytest.raises(ChatError):
        conversation_row([{"role": "user", "content": "x"}])
    path = export_jsonl([row, row])
    assert [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] == [
        row,
        row,
    ]
    version = save_as_dataset(workspace, [row], "my chats")
    assert (version.name, version.version, version.format) == ("my-chats", "v0001", "messages")
    from studio.data.records import dataset_file, read_records

    assert read_records(dataset_file(version))[0].format == "messages"


# --- the CLI ----------------------------------------------------------------------------
def test_generate_verb_compares_adapters_with_the_base(workspace, adapters, capsys, tmp_path):
    from studio.cli import main

    for folder in adapters[:2]:
        target = workspace.models / folder.name
        target.mkdir(parents=True)
        for f in folder.iterdir():
            (target / f.name).write_bytes(f.read_bytes())
    md = tmp_path / "grid.md"
    args = ["generate", "--adapter", "ad1", "--adapter", "ad2", "--with-base"]
    args += ["--prompt", "富士山は", "--greedy", "--max-new-tokens", "8"]
    args += ["--markdown", str(md), "--workspace", str(workspace.root), "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["models"] == ["tsumugi-tiny", "ad1", "ad2"]
    assert len(out["cells"]) == 3 and "results" not in out
    assert md.read_text(encoding="utf-8").startswith("| prompt | tsumugi-tiny | ad1 | ad2 |")
    solo = load_model(resolve_source(str(workspace.models / "ad2")))
    eight = GenerationSettings(max_new_tokens=8, greedy=True)
    assert out["cells"][2]["text"] == generate(solo, "富士山は", eight).text


def test_parameter_count_is_the_model_shown_not_every_adapter_loaded(adapters):
    """Compare and Chat load several adapters into one base: the Model tab's count of the
    base stays the base's, and an adapter's is the base plus that adapter."""
    from studio.models.info import describe

    pool = ModelPool()
    with pool.use(resolve_source("")) as alone:
        base = describe(alone)["parameters"]
    sizes = {}
    for folder in adapters[:2]:
        with pool.use(resolve_source(str(folder))) as loaded:
            lora = sum(p.numel() for n, p in loaded.model.named_parameters()
                       if f".{loaded.extra['adapter']}." in n)  # fmt: skip
            sizes[folder] = (describe(loaded)["parameters"], lora)
    with pool.use(resolve_source("")) as again:
        assert describe(again)["parameters"] == base  # two adapters are loaded into it now
    for shown, lora in sizes.values():
        assert lora > 0 and shown == base + lora
