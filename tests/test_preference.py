"""Preference training (issue 24): the import forms, the pair encoding and its diagnostics,
the config, the memory estimate, and CPU runs of every loss through trl's trainers."""

import json
import re
import subprocess
import sys

import pytest
import torch

from studio.data.ingest import IngestError, import_path
from studio.data.records import dataset_file, iter_records
from studio.labels.encode import EncodingSettings, resolve_tokens
from studio.labels.pairs import PairChecker, encode_pairs
from studio.train.config import ConfigError, RunConfig
from tests.conftest import REPO, child_env
from tests.real_families import FAMILIES, require
from tests.real_families import tokenizer as family_tokenizer

torch.set_num_threads(1)

CHAT = [
    {"role": "system", "content": "あなたはお嬢様です。"},
    {"role": "user", "content": "日本の首都は？"},
]


def write(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def rows_of(version):
    return [r.data for r in iter_records(dataset_file(version))]


# --- import ----------------------------------------------------------------------------------
FORMS = {
    "text": [{"prompt": "日本の首都は？", "chosen": "東京です。", "rejected": "大阪です。"}],
    "trl_chat": [
        {
            "prompt": CHAT,
            "chosen": [{"role": "assistant", "content": "東京ですわ。"}],
            "rejected": [{"role": "assistant", "content": "東京です。"}],
        }
    ],
    "implicit_chat": [
        {
            "chosen": [*CHAT, {"role": "assistant", "content": "東京ですわ。"}],
            "rejected": [*CHAT, {"role": "assistant", "content": "東京です。"}],
        }
    ],
    "implicit_text": [
        {
            "chosen": "\n\nHuman: 2+2?\n\nAssistant: It is 4.",
            "rejected": "\n\nHuman: 2+2?\n\nAssistant: It is 5.",
        }
    ],
    "sharegpt_ranking": [
        {
            "conversations": [{"from": "human", "value": "天気は？"}],
            "chosen": {"from": "gpt", "value": "晴れですわ。"},
            "rejected": {"from": "gpt", "value": "知らない。"},
        }
    ],
}


@pytest.mark.parametrize("shape", sorted(FORMS))
def test_each_preference_shape_imports_as_a_pair(shape, workspace, tmp_path):
    version, report = import_path(workspace, write(tmp_path / f"{shape}.jsonl", FORMS[shape]))
    assert version.format == "preference" and report["form"] == "preference"
    (row,) = rows_of(version)
    assert set(row) >= {"prompt", "chosen", "rejected"}
    chat = shape in ("trl_chat", "implicit_chat", "sharegpt_ranking")
    assert isinstance(row["prompt"], list) == chat
    if chat:
        assert row["prompt"][-1]["role"] == "user"
        assert row["chosen"] != row["rejected"] and "assistant" not in row["chosen"]
    if shape == "implicit_text":
        assert row["prompt"].endswith("It is ") and (row["chosen"], row["rejected"]) == (
            "4.",
            "5.",
        )
    if shape == "implicit_chat":
        assert row["prompt"] == CHAT and row["chosen"] == "東京ですわ。"


def test_kto_rows_and_csv_with_a_column_mapping(workspace, tmp_path):
    rows = [
        {"prompt": CHAT, "completion": "東京ですわ。", "label": True},
        {"prompt": CHAT, "completion": "大阪だ。", "label": "false"},
    ]
    version, report = import_path(workspace, write(tmp_path / "kto.jsonl", rows))
    assert version.format == "kto" and report["layout"] == "kto_chat"
    assert [r["label"] for r in rows_of(version)] == [True, False]
    csv = tmp_path / "pairs.csv"
    csv.write_text("質問,良い答え,悪い答え\n首都は？,東京です。,大阪です。\n", "utf-8")
    version, _ = import_path(
        workspace,
        csv,
        layout="preference",
        mapping={"prompt": "質問", "chosen": "良い答え", "rejected": "悪い答え"},
    )
    assert rows_of(version)[0]["chosen"] == "東京です。"


def test_a_malformed_pair_is_refused_with_its_line(workspace, tmp_path):
    rows = [
        FORMS["text"][0],
        {"prompt": "x", "chosen": [{"role": "user", "content": "a"}], "rejected": "b"},
    ]
    with pytest.raises(IngestError, match="line 2.*exactly one assistant message"):
        import_path(workspace, write(tmp_path / "bad.jsonl", rows))
    assert not (workspace.datasets / "bad").exists()


# --- encoding and diagnostics -------------------------------------------------------------
def check(rows, tokenizer, **settings):
    settings = EncodingSettings(**settings)
    tok = resolve_tokens(tokenizer, settings)
    pairs = encode_pairs(list(enumerate(rows)), tok, settings)
    checker = PairChecker(tok)
    for pair in pairs:
        checker.check(pair)
    return tok, pairs, {d.code: d for d in checker.findings()}


@pytest.mark.parametrize("family", ["tsumugi-tiny", *FAMILIES])
def test_a_pair_is_its_prompt_once_and_each_reply_to_its_end_marker(family):
    if family == "tsumugi-tiny":
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(REPO / "assets/models/tsumugi-tiny")
    else:
        require(family)
        tokenizer = family_tokenizer(family)
    row = {"prompt": CHAT, "chosen": "東京ですわ。", "rejected": "東京です。"}
    tok, (pair,), found = check([row], tokenizer, max_length=512)
    assert pair.reason is None and not found
    text = tokenizer.decode(pair.prompt_ids)
    assert "日本の首都は？" in text and "東京" not in text
    for side, reply in (("chosen", "東京ですわ。"), ("rejected", "東京です。")):
        ids = getattr(pair, f"{side}_ids")
        assert ids[-1] in tok.end_ids  # the reply ends on the model's end of turn, trained
        body = list(ids)
        while body and body[-1] in tok.end_ids:  # Phi-3.5 ends on <|end|><|endoftext|>
            body.pop()
        assert tokenizer.decode(body).strip() == reply
    # The same tokens as the SFT encoder gives the chosen reply as a chat row.
    from studio.labels.encode import IGNORE, encode_example

    sft = encode_example(
        {"messages": [*CHAT, {"role": "assistant", "content": "東京ですわ。"}]},
        tokenizer,
        EncodingSettings(max_length=512),
    )
    trained = [i for i, label in zip(sft.input_ids, sft.labels, strict=True) if label != IGNORE]
    assert trained == pair.chosen_ids
    assert sft.input_ids[: len(pair.prompt_ids)] == pair.prompt_ids


def test_pair_diagnostics_find_the_planted_cases(embedded):
    tokenizer = embedded.tokenizer
    long = "長い説明です。" * 60
    rows = [
        {"prompt": CHAT, "chosen": "同じ答えです。", "rejected": "同じ答えです。"},  # identical
        {"prompt": CHAT, "chosen": long, "rejected": "短い。"},  # chosen cut at max_length
        {"prompt": [{"role": "user", "content": long * 2}], "chosen": "a", "rejected": "b"},
        {"prompt": "Q: 1+1?\nA:", "chosen": " 2", "rejected": " 3"},  # text, no EOS added
        {"prompt": CHAT, "chosen": "東京ですわ。", "rejected": "東京です。"},  # fine
    ]
    _, pairs, found = check(rows[:3] + rows[4:], tokenizer, max_length=128)
    assert found["pair_identical"].rows == [1]
    assert (
        found["pair_truncated"].rows == [2] and "chosen" in found["pair_truncated"].params["side"]
    )
    assert (
        pairs[1].end_dropped["chosen"]
        and len(pairs[1].prompt_ids) + len(pairs[1].chosen_ids) == 128
    )
    assert found["pair_no_room"].rows == [3] and pairs[2].reason == "no_room"
    assert "pair_eos_missing" not in found
    _, _, found = check([rows[3]], tokenizer, max_length=128, add_eos=False)
    assert found["pair_eos_missing"].severity == "error"
    assert "chosen (1), rejected (1)" in found["pair_eos_missing"].params["side"]
    from studio.labels.diagnose import explain

    message, fix = explain(found["pair_eos_missing"], "ja")
    assert "終わって" in message and fix


def test_what_trl_trains_is_the_encoded_pair(embedded):
    """trl's collator puts the prompt once before each side and trains every token of a
    side and nothing else: the inspector's split is the training's."""
    from trl.trainer.dpo_trainer import DataCollatorForPreference

    from studio.train.preference import _old_style_row

    _, (pair,), _ = check(
        [{"prompt": CHAT, "chosen": "東京ですわ。", "rejected": "東京です。"}], embedded.tokenizer
    )
    batch = DataCollatorForPreference(pad_token_id=0)([pair.features()])
    for row, side in enumerate((pair.chosen_ids, pair.rejected_ids)):
        n = len(pair.prompt_ids) + len(side)
        assert batch["input_ids"][row, :n].tolist() == pair.prompt_ids + side
        assert batch["completion_mask"][row, :n].tolist() == [0] * len(pair.prompt_ids) + [1] * len(
            side
        )
        assert batch["completion_mask"][row, n:].sum() == 0
    old = _old_style_row(None, pair.features())
    labels = old["chosen_labels"]
    assert [i for i in labels if i != -100] == pair.chosen_ids


# --- config and estimate ------------------------------------------------------------------
def test_config_refuses_packing_and_unknown_losses():
    with pytest.raises(ConfigError, match="packing") as exc:
        RunConfig.from_dict({"encoding": {"stage": "preference", "packing": "isolated"}})
    assert exc.value.code == "preference_packing"
    with pytest.raises(ConfigError, match="preference.loss"):
        RunConfig.from_dict({"encoding": {"stage": "preference"}, "preference": {"loss": "ppo"}})
    with pytest.raises(ConfigError, match="beta"):
        RunConfig.from_dict({"preference": {"beta": 0}})


def test_the_estimate_covers_both_sides_and_the_reference():
    from studio.train import vram
    from studio.train.start import estimate_memory

    arch = json.loads((REPO / "bench/configs/qwen2.5-0.5b.json").read_text())
    base = {
        "model": "x",
        "encoding": {"max_length": 1024},
        "training": {"per_device_train_batch_size": 4},
    }
    sft = estimate_memory(RunConfig.from_dict(base), arch)
    pref = {**base, "encoding": {"stage": "preference", "max_length": 1024}}
    dpo = estimate_memory(RunConfig.from_dict(pref), arch)
    full = estimate_memory(RunConfig.from_dict({**pref, "method": "full"}), arch)
    orpo = estimate_memory(RunConfig.from_dict({**pref, "preference": {"loss": "orpo"}}), arch)
    assert "reference" not in sft.parts and "reference" not in orpo.parts
    assert dpo.parts["activations"] > 1.9 * sft.parts["activations"]  # two sides a row
    assert dpo.total >= orpo.total > sft.total
    assert dpo.parts["reference"] > 0
    # A full fine-tune keeps a frozen copy of the weights as its reference; LoRA does not.
    assert full.parts["reference"] - dpo.parts["reference"] > 0.9 * dpo.parts["weights"]
    lines = vram.summary_lines(dpo, "ja")
    assert any("参照モデル" in line for line in lines)


# --- training -------------------------------------------------------------------------------
def train(ws, *args, timeout=600):
    out = subprocess.run(
        [sys.executable, "-m", "studio", "train", "cpu-demo-dpo", "--workspace", str(ws), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=child_env(OMP_NUM_THREADS="1"),
        timeout=timeout,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    (run,) = [p for p in (ws / "runs").iterdir() if p.is_dir()]
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return run, metrics, out.stdout + out.stderr


def test_the_cpu_dpo_demo_raises_the_margin_and_the_held_out_preference(tmp_path):
    # One of the preset's two epochs (the suite's time); the curve is the preset's.
    run, metrics, log = train(tmp_path / "ws", "--set", "num_train_epochs=1")
    train_records = [m for m in metrics if m.get("kind") == "train" and "reward_margin" in m]
    assert train_records[0]["reward_margin"] == pytest.approx(0.0, abs=1e-6)
    late = train_records[-4:]
    assert min(m["reward_margin"] for m in late) > 1.0
    assert all(m["reward_accuracy"] > 0.9 for m in late)
    evals = [m for m in metrics if m.get("kind") == "eval"]
    assert evals and evals[-1]["eval_reward_margin"] > evals[0]["eval_reward_margin"] > 0
    info = json.loads((run / "run.json").read_text())
    share = info["preference"]
    assert share["after"]["pairs"] == share["before"]["pairs"] >= 20
    assert share["after"]["share"] > share["before"]["share"]
    assert share["after"]["mean_gap"] > share["before"]["mean_gap"]
    assert "held-out pairs preferred after training" in log
    assert (run / "final" / "adapter_model.safetensors").is_file()
    assert info["versions"]["trl"] == "1.14.2"


@pytest.mark.parametrize("loss", ["ipo", "orpo", "simpo", "kto"])
def test_every_loss_trains_on_cpu_through_trl(loss, tmp_path):
    run, metrics, log = train(
        tmp_path / "ws", "--set", f"preference.loss={loss}", "--set", "max_steps=3",
        "--set", "save_steps=3", "--set", "eval_strategy=no", "--set", "validation_split=0",
    )  # fmt: skip
    records = [m for m in metrics if m.get("kind") == "train"]
    assert records and all(m["loss"] is not None for m in records)
    assert "reward_chosen" in records[-1] and "reward_rejected" in records[-1]
    assert f"preference pairs ({loss})" in log
    found = re.search(r"([\d,]+) to train, ([\d,]+) to validate", log)
    rows = sum(int(n.replace(",", "")) for n in found.groups())
    assert int(found.group(2)) == 0
    # A pair gives KTO two rows: its chosen reply as desirable, its rejected one as not.
    assert rows == (2 * 278 if loss == "kto" else 278)


def test_the_inspect_tab_shows_the_prompt_once_and_both_replies_trained(workspace):
    from studio.data.registry import find_version
    from studio.labels.inspect import load_target, rows_at
    from studio.labels.pairs import scan_pairs
    from studio.models.load import resolve_source
    from studio.ui.inspect_tab import render_pairs

    target = load_target(resolve_source(""))
    version = find_version(workspace, "sample-pref-ojousama")
    settings = EncodingSettings(max_length=256)
    report = scan_pairs(workspace, [version.spec], target, settings)
    assert report.rows == 278 and report.sequences == 278 and not report.blocked
    assert report.trained_tokens > 0 and report.tokens > report.trained_tokens
    views, texts = render_pairs(rows_at(dataset_file(version), 0, 2), target, settings, "ja", False)
    assert views.count("pair-prompt") == 2 and views.count("pair-chosen") == 2
    prompt_part = views.split('class="pair-part pair-chosen"')[0].split("pair-prompt")[1]
    assert "tok-masked" in prompt_part and "tok-trained" not in prompt_part
    chosen_part = views.split('class="pair-part pair-chosen"')[1].split("pair-rejected")[0]
    assert "tok-trained" in chosen_part and "tok-masked" not in chosen_part
    first = rows_of(version)[0]
    assert first["chosen"] in texts and first["rejected"] in texts and "選ばれた応答" in texts


def test_inspect_cli_checks_pairs_and_shows_one(tmp_path, capsys):
    from studio.cli import main

    rows = [
        {"prompt": CHAT, "chosen": "東京ですわ。", "rejected": "東京ですわ。"},
        {"prompt": CHAT, "chosen": "東京ですわ。", "rejected": "東京です。"},
    ]
    path = write(tmp_path / "pairs.jsonl", rows)
    ws = str(tmp_path / "w")
    code = main(["inspect", "--data", str(path), "--show-row", "1", "--workspace", ws, "--json"])
    payload = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and payload["rows"] == 2
    assert [d["code"] for d in payload["diagnostics"]] == ["pair_identical"]
    assert payload["diagnostics"][0]["rows"] == [1]
    row = payload["row"]
    assert row["reason"] is None and row["chosen_ids"] != row["rejected_ids"]
    code = main(["inspect", "--data", "sample-pref-ojousama", "--workspace", ws, "--json"])
    payload = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and payload["rows"] == 278 and payload["trained_tokens"] > 0
