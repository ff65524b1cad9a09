"""Preference pairs made in the studio: a Compare grid's rows marked (or one model preferred
over another), a two-model chat's turns chosen, saved as a `preference` version; the grid
read back from its JSON or CSV; `python -m studio data preference`."""

from __future__ import annotations

import json

import pytest

from studio.chat import ChatError, preference_pair
from studio.compare import (
    Cell,
    Comparison,
    ComparisonFileError,
    _failed,
    mark_counts,
    preference_mark,
    read_comparison,
    read_marks,
    repetition,
)
from studio.data.preference import pairs_from_marks, prefer_model, save_pairs
from studio.data.records import dataset_file, iter_records
from studio.errors import InputError

PROMPTS = ["富士山の高さは？", "お茶の淹れ方は？", "こんにちは。", "抹茶とは？"]
REPLIES = {
    ("base", 0): "富士山は高い山です。",
    ("tuned", 0): "富士山の高さは3776メートルです。",
    ("base", 1): "お湯を注ぎます。",
    ("tuned", 1): "八十度のお湯で一分ほど蒸らします。",
    ("base", 2): "こんにちは。",
    ("tuned", 2): "こんにちは。",  # identical: not a pair
    ("base", 3): "抹茶は粉末の緑茶です。",
}


def grid(chat: bool = False, system: str | None = None) -> Comparison:
    """base and tuned on four prompts; tuned failed on the last (an error cell)."""
    cells = []
    for model in ("base", "tuned"):
        for i, prompt in enumerate(PROMPTS):
            if (model, i) not in REPLIES:
                cells.append(_failed(model, i, prompt, "CUDA out of memory"))
                continue
            text = REPLIES[(model, i)]
            cells.append(
                Cell(model, i, prompt, text, 8, "eos", 0.1, [], **repetition(text), raw_text=text)
            )
    return Comparison(["base", "tuned"], PROMPTS, {"seed": 0}, chat, system, cells)


# --- the library ------------------------------------------------------------------------
def test_marks_make_pairs_and_count_what_is_not_written():
    comparison = grid().to_dict()
    marks = [
        {"prompt_index": 0, "chosen": "tuned", "rejected": "base"},
        {"prompt_index": 1, "chosen": "base", "rejected": "tuned"},
        {"prompt_index": 2, "chosen": "tuned", "rejected": "base"},  # identical replies
        {"prompt_index": 3, "chosen": "base", "rejected": "tuned"},  # tuned failed
        {"prompt_index": 0, "tie": True},
        {"prompt_index": 1, "skip": True},
    ]
    rows, counts = pairs_from_marks(comparison, marks)
    assert counts == {"marked": 6, "pairs": 2, "ties": 1, "skipped": 1, "unusable": 2}
    assert [(r["prompt"], r["chosen"], r["rejected"]) for r in rows] == [
        (PROMPTS[0], REPLIES[("tuned", 0)], REPLIES[("base", 0)]),
        (PROMPTS[1], REPLIES[("base", 1)], REPLIES[("tuned", 1)]),
    ]
    assert [(r["chosen_model"], r["rejected_model"]) for r in rows] == [
        ("tuned", "base"),
        ("base", "tuned"),
    ]
    assert mark_counts(marks) == {"marked": 6, "pairs": 4, "ties": 1, "skipped": 1}


def test_prefer_one_model_over_another_on_every_row():
    comparison = grid().to_dict()
    marks = prefer_model(comparison, "tuned", "base")
    assert marks == [
        {"prompt_index": i, "chosen": "tuned", "rejected": "base"} for i in range(len(PROMPTS))
    ]
    rows, counts = pairs_from_marks(comparison, marks)
    assert counts["pairs"] == 2 and counts["unusable"] == 2  # row 3 identical, row 4 failed
    assert {r["chosen_model"] for r in rows} == {"tuned"}
    with pytest.raises(InputError, match="nobody is not in the comparison") as refused:
        prefer_model(comparison, "nobody", "base")
    assert refused.value.code == "model_not_compared"
    assert "比較したモデル: base, tuned" in refused.value.text("ja")
    with pytest.raises(InputError) as same:
        prefer_model(comparison, "base", "base")
    assert same.value.code == "same_models_compared"


def test_a_mark_that_does_not_fit_the_grid_is_the_users_to_correct():
    comparison = grid().to_dict()
    with pytest.raises(InputError) as out_of_range:
        pairs_from_marks(comparison, [{"prompt_index": 9, "chosen": "base", "rejected": "tuned"}])
    assert out_of_range.value.code == "bad_preference_mark"
    with pytest.raises(InputError, match="nobody has no reply"):
        pairs_from_marks(comparison, [{"prompt_index": 0, "chosen": "nobody", "rejected": "base"}])


def test_a_persons_mark_of_a_row():
    comparison = grid().to_dict()
    assert preference_mark(comparison, 0, "1", "tuned", "base") == {
        "prompt_index": 0,
        "chosen": "tuned",
        "rejected": "base",
    }
    assert preference_mark(comparison, 0, "2", "tuned", "base")["chosen"] == "base"
    assert preference_mark(comparison, 1, "=", "tuned", "base") == {"prompt_index": 1, "tie": True}
    assert preference_mark(comparison, 2, "skip", "", "") == {"prompt_index": 2, "skip": True}
    for args, code in (
        ((4, "1", "tuned", "base"), "row_not_compared"),
        ((0, "1", "base", "base"), "same_models_compared"),
        ((0, "1", "tuned", "other"), "model_not_compared"),
    ):
        with pytest.raises(InputError) as refused:
            preference_mark(comparison, *args)
        assert refused.value.code == code, args
    partial = grid().to_dict()
    partial["cells"] = [c for c in partial["cells"] if c["model"] == "base"]  # still running
    with pytest.raises(InputError) as pending:
        preference_mark(partial, 0, "1", "base", "tuned")
    assert pending.value.code == "reply_not_ready"
    assert "tuned は行 1 にまだ答えていません" in pending.value.text("ja")


def test_chat_prompts_carry_the_system_prompt_and_save_and_read_back(workspace):
    comparison = grid(chat=True, system="丁寧に答えてください。").to_dict()
    rows, counts = pairs_from_marks(comparison, prefer_model(comparison, "tuned", "base"))
    assert rows[0]["prompt"] == [
        {"role": "system", "content": "丁寧に答えてください。"},
        {"role": "user", "content": PROMPTS[0]},
    ]
    version = save_pairs(workspace, "prefs", rows, source="test", counts=counts)
    assert (version.name, version.version, version.format) == ("prefs", "v0001", "preference")
    assert version.counts["pairs"] == 2 and version.counts["unusable"] == 2
    records = list(iter_records(dataset_file(version)))
    assert {r.format for r in records} == {"preference"}
    assert [(r.data["chosen"], r.data["rejected"]) for r in records] == [
        (REPLIES[("tuned", 0)], REPLIES[("base", 0)]),
        (REPLIES[("tuned", 1)], REPLIES[("base", 1)]),
    ]
    assert [(r.data["chosen_model"], r.data["rejected_model"]) for r in records] == [
        ("tuned", "base")
    ] * 2
    assert records[1].data["prompt"][0] == {"role": "system", "content": "丁寧に答えてください。"}


def test_a_grid_reads_back_from_its_csv_and_its_json(tmp_path):
    result = grid()
    as_csv = tmp_path / "compare.csv"
    as_csv.write_text(result.to_csv(), encoding="utf-8")
    read = read_comparison(as_csv)
    assert read["models"] == ["base", "tuned"] and read["prompts"] == PROMPTS
    assert read["chat"] is False and read["system"] is None
    marks = prefer_model(read, "tuned", "base")
    assert pairs_from_marks(read, marks) == pairs_from_marks(result.to_dict(), marks)
    failed = next(c for c in read["cells"] if c["model"] == "tuned" and c["prompt_index"] == 3)
    assert failed["error"] == "CUDA out of memory"
    # A CSV does not say it was chat: the caller does, with the system prompt.
    chat = read_comparison(as_csv, chat=True, system="丁寧に")
    rows, _ = pairs_from_marks(chat, marks)
    assert rows[0]["prompt"][0] == {"role": "system", "content": "丁寧に"}
    # The JSON (`--json`, `Comparison.to_dict()`) says it itself.
    as_json = tmp_path / "compare.json"
    as_json.write_text(json.dumps({"ok": True, **grid(True, "S").to_dict()}), encoding="utf-8")
    assert read_comparison(as_json)["chat"] is True and read_comparison(as_json)["system"] == "S"


def test_unreadable_grids_and_marks_are_said_with_the_file(tmp_path):
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("model,text\nbase,x\n", encoding="utf-8")
    with pytest.raises(ComparisonFileError, match="no column prompt_index, prompt"):
        read_comparison(bad_csv)
    bad_index = tmp_path / "index.csv"
    bad_index.write_text("model,prompt_index,prompt,text\nbase,one,p,x\n", encoding="utf-8")
    with pytest.raises(ComparisonFileError, match=r"index\.csv:2: prompt_index"):
        read_comparison(bad_index)
    not_json = tmp_path / "broken.json"
    not_json.write_text('{"models": [', encoding="utf-8")
    with pytest.raises(ComparisonFileError, match="not valid JSON"):
        read_comparison(not_json)
    other = tmp_path / "other.json"
    other.write_text('{"rows": []}', encoding="utf-8")
    with pytest.raises(ComparisonFileError, match="not a saved comparison"):
        read_comparison(other)
    with pytest.raises(ComparisonFileError, match="cannot read"):
        read_comparison(tmp_path / "missing.csv")
    marks = tmp_path / "marks.jsonl"
    marks.write_text('{"prompt_index": 0, "tie": true}\n{"prompt_index": 1}\n', encoding="utf-8")
    with pytest.raises(ComparisonFileError, match=r"marks\.jsonl:2: a mark says"):
        read_marks(marks)
    marks.write_text('{"prompt_index": 0, "tie": true}\n\n["x"]\n', encoding="utf-8")
    with pytest.raises(ComparisonFileError, match=r"marks\.jsonl:3: expected a JSON object"):
        read_marks(marks)


def test_a_two_model_chat_turn_becomes_a_pair():
    user = {"role": "user", "content": "抹茶とは？"}
    first = [{"role": "user", "content": "こんにちは"}, {"role": "assistant", "content": "やあ"}]
    hist_a = [*first, user, {"role": "assistant", "content": "粉末の緑茶です。"}]
    hist_b = [
        {"role": "user", "content": "こんにちは"},
        {"role": "assistant", "content": "ごきげんよう"},
        user,
        {"role": "assistant", "content": [{"type": "text", "text": "抹茶は飲み物です。"}]},
    ]
    row = preference_pair(hist_a, hist_b, "A", "B", "2", system="丁寧に")
    assert row == {
        "prompt": [{"role": "system", "content": "丁寧に"}, *first, user],
        "chosen": "抹茶は飲み物です。",
        "rejected": "粉末の緑茶です。",
        "chosen_model": "B",
        "rejected_model": "A",
    }
    assert preference_pair(hist_a, hist_b, "A", "B", "1")["prompt"] == [*first, user]
    assert preference_pair(hist_a, hist_b, "A", "B", "=")["tie"] is True
    for a, b, code in (
        (hist_a, [], "chat_pair_incomplete"),
        (hist_a, hist_b[:2] + [{"role": "user", "content": "別"}, hist_b[3]], "chat_pair_mismatch"),
        (hist_a, [*hist_a[:-1], {"role": "assistant", "content": "粉末の緑茶です。 "}],
         "chat_pair_identical"),
    ):  # fmt: skip
        with pytest.raises(ChatError) as refused:
            preference_pair(a, b, "A", "B", "1")
        assert refused.value.code == code
        assert refused.value.text("ja") != str(refused.value)  # said in Japanese too


def test_the_compare_tabs_marks_belong_to_their_grid(workspace):
    """The Compare tab's handlers without a browser: marks move to the next unmarked row,
    belong to one grid, and save through the library."""
    pytest.importorskip("gradio")
    from studio.ui import compare_tab
    from studio.ui.errors import ShownError

    result = grid()
    state, row = None, 1
    for choice in ("1", "=", "2"):
        state, row, view, progress = compare_tab.mark_row(
            choice, result, state, "tuned", "base", row, "en"
        )
    assert row == 4 and "Row 4 of 4" in view
    assert progress.startswith("Marked 3 of 4 rows: 2 pairs, 1 ties, 0 skipped")
    marks = compare_tab.marks_of(result, state)
    assert marks[2] == {"prompt_index": 2, "chosen": "base", "rejected": "tuned"}
    other = Comparison(["base", "tuned"], PROMPTS[:2], {"seed": 1}, False, None, result.cells[:2])
    assert compare_tab.marks_of(other, state) == {}  # a new grid starts unmarked
    with pytest.raises(ShownError, match="not a valid name"):
        compare_tab.save_marked(workspace, result, state, "../escape", "en")
    said = compare_tab.save_marked(workspace, result, state, "grid-prefs", "en")
    assert "Saved 1 pairs as preference dataset grid-prefs/v0001" in said  # row 3 identical
    assert "1 ties" in said and "1 unusable" in said
    records = list(iter_records(workspace.datasets / "grid-prefs" / "v0001" / "data.parquet"))
    assert [r.data["chosen"] for r in records] == [REPLIES[("tuned", 0)]]


# --- the CLI ----------------------------------------------------------------------------
def cli(capsys, *args) -> tuple[int, dict]:
    from studio.cli import main

    code = main(["data", "preference", *map(str, args), "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_the_preference_verb_prefers_a_model_or_reads_marks(workspace, tmp_path, capsys):
    ws = ["--workspace", workspace.root]
    as_json = tmp_path / "grid.json"
    as_json.write_text(json.dumps(grid(True, "丁寧に").to_dict(), ensure_ascii=False), "utf-8")
    code, out = cli(capsys, as_json, "--name", "tuned-over-base", "--prefer", "tuned",
                    "--over", "base", *ws)  # fmt: skip
    assert code == 0 and out["ok"] and out["version"] == "tuned-over-base/v0001"
    assert out["counts"] == {"marked": 4, "pairs": 2, "ties": 0, "skipped": 0, "unusable": 2}
    version = workspace.datasets / "tuned-over-base" / "v0001" / "data.parquet"
    records = list(iter_records(version))
    assert [r.data["prompt"][0]["content"] for r in records] == ["丁寧に", "丁寧に"]

    as_csv = tmp_path / "grid.csv"
    as_csv.write_text(grid().to_csv(), encoding="utf-8")
    marks = tmp_path / "marks.jsonl"
    lines = [
        {"prompt_index": 1, "chosen": "base", "rejected": "tuned"},
        {"prompt_index": 0, "tie": True},
        {"prompt_index": 3, "skip": True},
    ]
    marks.write_text("".join(json.dumps(m) + "\n" for m in lines), encoding="utf-8")
    code, out = cli(capsys, as_csv, "--name", "marked", "--marks", marks, *ws)
    assert code == 0 and out["counts"]["pairs"] == 1 and out["counts"]["ties"] == 1
    (record,) = iter_records(workspace.datasets / "marked" / "v0001" / "data.parquet")
    assert record.format == "preference" and record.data["prompt"] == PROMPTS[1]  # plain text
    assert (record.data["chosen"], record.data["chosen_model"]) == (REPLIES[("base", 1)], "base")

    from studio.cli import main

    assert main(["data", "preference", str(as_csv), "--name", "x", "--prefer", "tuned",
                 "--over", "base", *map(str, ws)]) == 0  # fmt: skip
    assert "wrote 2 pairs from" in capsys.readouterr().out


def test_the_preference_verb_says_what_is_wrong_in_one_line(workspace, tmp_path, capsys):
    ws = ["--workspace", workspace.root]
    as_csv = tmp_path / "grid.csv"
    as_csv.write_text(grid().to_csv(), encoding="utf-8")
    cases = [
        (["--prefer", "nobody", "--over", "base"], "model_not_compared", "nobody is not in"),
        (["--prefer", "tuned"], None, "--prefer MODEL_A --over MODEL_B, or --marks"),
        (["--prefer", "tuned", "--over", "base", "--marks", as_csv], None, "not both"),
        (["--marks", tmp_path / "none.jsonl"], "comparison_file_error", "cannot read marks"),
    ]
    for extra, code, message in cases:
        status, out = cli(capsys, as_csv, "--name", "n", *extra, *ws)
        assert status == 1 and not out["ok"], extra
        assert message in out["error"]["message"], out
        if code:
            assert out["error"]["code"] == code
    # a file that is no comparison; only ties (nothing to write); a name that is a path
    status, out = cli(capsys, tmp_path / "missing.json", "--name", "n", "--prefer", "a",
                      "--over", "b", *ws)  # fmt: skip
    assert status == 1 and "cannot read" in out["error"]["message"]
    ties = tmp_path / "ties.jsonl"
    ties.write_text('{"prompt_index": 0, "tie": true}\n', encoding="utf-8")
    status, out = cli(capsys, as_csv, "--name", "n", "--marks", ties, *ws)
    assert status == 1 and "no pair to save" in out["error"]["message"]
    status, out = cli(capsys, as_csv, "--name", "../up", "--prefer", "tuned", "--over", "base",
                      *ws)  # fmt: skip
    assert status == 1 and "is not a valid name" in out["error"]["message"]
    assert not (workspace.root / "up").exists() and not (workspace.datasets / "n").exists()
