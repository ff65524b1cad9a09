"""Importing files into dataset versions (encodings, layouts, malformed rows), and the
version operations every data step shares: open, write, split, export, delete, lineage."""

from __future__ import annotations

import json

import pytest

from studio.cli import main
from studio.data.ingest import IngestError, detect_encoding, import_path, inspect_file
from studio.data.records import dataset_file, iter_records
from studio.data.registry import list_datasets
from studio.data.store import (
    DataError,
    delete_version,
    export_version,
    lineage,
    open_version,
    split_version,
    write_version,
)

JA = "富士山は日本一高い山です。\n琵琶湖は日本一大きい湖です。\n"


def write(path, data: bytes | str, encoding="utf-8"):
    path.write_bytes(data if isinstance(data, bytes) else data.encode(encoding))
    return path


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp932", "euc-jp"])
def test_japanese_text_in_every_encoding(workspace, tmp_path, encoding):
    path = write(tmp_path / "doc.txt", JA, encoding)
    assert detect_encoding(path) == encoding
    version, report = import_path(workspace, path)
    assert report["encoding"] == encoding and version.format == "text"
    assert [r["text"] for r in open_version(workspace, version)] == JA.splitlines()


def test_txt_paragraphs_and_lines(workspace, tmp_path):
    paragraphs = write(tmp_path / "p.txt", "一行目\n二行目\n\n次の文書\n続き\n")
    assert inspect_file(paragraphs).txt_mode == "paragraphs"
    version, _ = import_path(workspace, paragraphs)
    assert [r["text"] for r in open_version(workspace, version)] == [
        "一行目\n二行目",
        "次の文書\n続き",
    ]
    version, _ = import_path(workspace, paragraphs, name="as-lines", txt_mode="lines")
    assert version.rows == 4


def test_layouts_are_detected_and_converted(workspace, tmp_path):
    alpaca = [
        {"instruction": "訳して", "input": "cat", "output": "猫"},
        {"instruction": "挨拶して", "input": "", "output": "こんにちは"},
    ]
    path = write(tmp_path / "alpaca.json", json.dumps(alpaca, ensure_ascii=False))
    version, report = import_path(workspace, path)
    assert report["layout"] == "alpaca" and version.format == "prompt_completion"
    rows = open_version(workspace, version).to_list()
    assert rows[0]["prompt"] == "訳して\n\ncat" and rows[1]["prompt"] == "挨拶して"

    share = {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]}
    path = write(tmp_path / "sg.jsonl", json.dumps(share) + "\n")
    version, report = import_path(workspace, path)
    assert report["layout"] == "sharegpt"
    assert open_version(workspace, version)[0]["messages"][1] == {
        "role": "assistant",
        "content": "yo",
    }

    path = write(tmp_path / "qa.tsv", "id\tquestion\tanswer\nq1\t高さは？\t3776m\n")
    version, report = import_path(workspace, path)
    assert report["mapping"] == {"prompt": "question", "completion": "answer"}
    assert open_version(workspace, version)[0] == {
        "id": "q1",
        "prompt": "高さは？",
        "completion": "3776m",
    }
    # the trainer and the inspector read a Parquet version like a JSONL one
    assert next(iter_records(dataset_file(version))).format == "prompt_completion"


def test_conversational_prompt_completion_becomes_chat_that_trains_the_completion(
    workspace, tmp_path
):
    """trl's conversational prompt/completion: `prompt` a list of messages, `completion`
    the assistant's. It was refused ("'prompt' and 'completion' must be strings") or
    imported as JSON text; now it is a chat row whose `completion_start` marks the turns
    that carry loss."""
    from studio.data.records import canonical
    from studio.labels.encode import EncodingSettings, encode_example, resolve_tokens
    from studio.models.load import load_tokenizer, resolve_source

    history = [
        {"role": "user", "content": "こんにちは"},
        {"role": "assistant", "content": "ごきげんよう。"},
        {"role": "user", "content": "富士山の高さは？"},
    ]
    rows = [
        {
            "prompt": history,
            "completion": [{"role": "assistant", "content": "3776メートルですわ。"}],
        },
        {"prompt": history[:1], "completion": {"role": "assistant", "content": "ごきげんよう。"}},
    ]
    path = write(tmp_path / "pairs.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    version, report = import_path(workspace, path)
    assert report["layout"] == "prompt_completion_chat" and version.format == "messages"
    stored = open_version(workspace, version).to_list()
    assert stored[0]["messages"] == [*history, rows[0]["completion"][0]]
    assert [r["completion_start"] for r in stored] == [3, 1]
    # the same rows read straight from the file (the inspector on a path) are the same
    assert canonical(rows[0])["completion_start"] == 3
    tokenizer = load_tokenizer(resolve_source(""))
    settings = EncodingSettings()
    tok = resolve_tokens(tokenizer, settings)
    record = next(iter_records(dataset_file(version)))
    enc = encode_example(record.data, tok, settings)
    trained = tokenizer.decode(
        [i for i, x in zip(enc.input_ids, enc.labels, strict=True) if x != -100]
    )
    assert trained == "3776メートルですわ。<|im_end|>"  # not the earlier assistant turn
    bad = write(
        tmp_path / "bad.jsonl",
        json.dumps({"prompt": history, "completion": [{"role": "user", "content": "x"}]}) + "\n",
    )
    with pytest.raises(IngestError, match="no assistant message"):
        import_path(workspace, bad)


def test_column_mapping(workspace, tmp_path):
    path = write(tmp_path / "news.csv", "title,body\nA,本文です\n")
    version, _ = import_path(workspace, path, layout="text", mapping={"text": "body"})
    assert open_version(workspace, version)[0]["text"] == "本文です"
    with pytest.raises(IngestError, match="column 'nope' .* its columns are title, body"):
        import_path(workspace, path, layout="text", mapping={"text": "nope"})


def test_japanese_headers_are_recognised_and_unknown_ones_can_be_mapped(
    workspace, tmp_path, capsys
):
    qa = write(tmp_path / "qa.csv", "質問,回答\n富士山の高さは？,3776 m です。\n", "cp932")
    version, report = import_path(workspace, qa)
    assert report["layout"] == "prompt_completion" and report["mapping"] == {
        "prompt": "質問", "completion": "回答"}  # fmt: skip
    assert open_version(workspace, version)[0]["completion"] == "3776 m です。"

    odd = write(tmp_path / "odd.csv", "id,foo,bar\n1,こんにちは,どうも\n2,元気？,はい\n", "cp932")
    seen = inspect_file(odd)  # the first look still works: the user maps the columns
    assert seen.layout is None and seen.columns == ["id", "foo", "bar"]
    assert "choose the layout and map the columns" in seen.layout_error
    with pytest.raises(IngestError, match="--layout and --map"):
        import_path(workspace, odd)
    # an explicit layout and mapping win over detection; the mapping alone names the layout
    mapping = {"prompt": "foo", "completion": "bar"}
    for layout in ("prompt_completion", None):
        version, report = import_path(workspace, odd, layout=layout, mapping=mapping)
        assert report["layout"] == "prompt_completion"
        assert open_version(workspace, version)[1] | {"id": None} == {
            "id": None, "prompt": "元気？", "completion": "はい"}  # fmt: skip
    with pytest.raises(IngestError, match=r"messages layout with the mapping messages <- foo does"
                       r" not fit odd.csv \(first row: column 'foo' holds text"):  # fmt: skip
        import_path(workspace, odd, layout="messages", mapping={"messages": "foo"})
    version, _ = import_path(workspace, odd, layout="text", mapping={"text": "foo"})
    assert [r["text"] for r in open_version(workspace, version)] == ["こんにちは", "元気？"]
    ws = ["--workspace", str(workspace.root), "--json"]
    code = main(["data", "import", str(odd), "--layout", "prompt_completion", "--map", "prompt=foo",
                 "--map", "completion=bar", *ws])  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["report"]["rows"] == 2, out
    code = main(
        [
            "data",
            "import",
            str(qa),
            "--layout",
            "prompt_completion",
            "--map",
            "completion=質問",
            *ws,
        ]
    )  # fmt: skip  (a partial mapping keeps the rest)
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out
    assert open_version(workspace, out["version"])[0]["completion"] == "富士山の高さは？"


@pytest.mark.parametrize(
    "name,content,match",
    [
        ("empty.jsonl", b"", "empty.jsonl is empty"),
        ("blob.txt", b"\x00\x01\x02\x03binary", "looks like a binary file"),
        ("bad.jsonl", '{"text": "a"}\n{oops}\n', r"bad.jsonl, line 2: not valid JSON"),
        ("ragged.csv", "text,id\nok,1\ntoo,many,fields\n", r"ragged.csv, line 3: 3 fields"),
        ("list.jsonl", '{"text": "a"}\n[1, 2]\n', r"line 2: a JSON list"),
        ("latin.txt", "caf\xe9 cr\xe8me\n".encode("latin-1"), "not UTF-8, CP932"),
        ("doc.docx", b"PK\x03\x04", "unsupported file type .docx"),
        ("trunc.parquet", b"PAR1\x00\x00", "not a readable Parquet file"),
        ("deep.jsonl", '{"text": "a"}\n' + "[" * 100_000 + "]" * 100_000, r"line 2: JSON nested"),
        ("deep.json", "[" * 100_000 + "]" * 100_000, r"deep.json: JSON nested too deeply"),
        ("lone.jsonl", '{"text": "a"}\n{"text": "b\\ud800c"}\n', r"line 2: holds a lone surr"),
    ],
)
def test_bad_files_are_refused_with_file_and_line(workspace, tmp_path, name, content, match):
    before = [v.spec for v in list_datasets(workspace)]
    with pytest.raises(IngestError, match=match):
        import_path(workspace, write(tmp_path / name, content))
    assert [v.spec for v in list_datasets(workspace)] == before  # nothing written


def test_malformed_rows_can_be_skipped_and_are_listed(workspace, tmp_path):
    path = write(tmp_path / "mixed.jsonl", '{"text": "a"}\n{oops}\n\n{"text": "b"}\n{"text": ""}\n')
    version, report = import_path(workspace, path, skip_bad=True)
    assert version.rows == 2 and report["skipped"] == 2
    assert [i["line"] for i in report["skipped_rows"]] == [2, 5]
    assert version.counts == {"rows": 2, "skipped": 2}


def test_versions_split_export_delete_and_lineage(workspace, tmp_path):
    base = open_version(workspace, "sample-qa")
    smaller = write_version(
        workspace,
        "sample-qa",
        base.select(range(100)),
        format="prompt_completion",
        operation="select",
        parent="sample-qa/v0001",
        counts={"in": len(base), "out": 100},
    )
    assert smaller.spec == "sample-qa/v0002" and smaller.rows == 100
    train, val = split_version(workspace, smaller.spec, validation=0.1, seed=1)
    assert (train.rows, val.rows) == (90, 10)
    assert [v.spec for v in lineage(workspace, val.spec)] == [
        "sample-qa-validation/v0001",
        "sample-qa/v0002",
        "sample-qa/v0001",
    ]
    ids = {r["id"] for r in open_version(workspace, train)} | {
        r["id"] for r in open_version(workspace, val)
    }
    assert len(ids) == 100  # a partition: nothing lost, nothing twice
    out = export_version(workspace, val.spec, "jsonl", tmp_path)
    assert len(out.read_text(encoding="utf-8").splitlines()) == 10
    assert export_version(workspace, val.spec, "parquet", tmp_path / "v.parquet").is_file()
    delete_version(workspace, smaller.spec)
    assert "sample-qa/v0002" not in {v.spec for v in list_datasets(workspace)}
    assert [v.spec for v in lineage(workspace, val.spec)][-1] == "sample-qa-validation/v0001"
    with pytest.raises(DataError, match="left no rows"):
        write_version(workspace, "x", base.select([]), format="text", operation="filter")


def test_cli_import_show_split_export_chain(workspace, tmp_path, capsys):
    path = write(tmp_path / "notes.txt", JA)
    ws = ["--workspace", str(workspace.root), "--json"]

    def run(*args):
        code = main([*args, *ws])
        return code, json.loads(capsys.readouterr().out)

    code, out = run("data", "import", str(path), "--name", "notes")
    assert code == 0 and out["version"] == "notes/v0001"
    code, out = run("data", "show", out["version"], "--rows", "1")
    assert out["rows"][0]["text"] == "富士山は日本一高い山です。"
    code, out = run("data", "split", "notes", "--validation", "0.5")
    assert (out["train"], out["validation"]) == ("notes-train/v0001", "notes-validation/v0001")
    code, out = run("data", "export", out["version"], "--out", str(tmp_path))
    assert code == 0 and out["path"].endswith("notes-train-v0001.jsonl")
    code, out = run("data", "import", str(write(tmp_path / "e.csv", "")))
    assert code == 1 and "e.csv is empty" in out["error"]["message"]
    code, out = run("data", "delete", "notes/v0001")
    assert code == 1 and "--yes" in out["error"]["message"]


def test_rows_nested_too_deeply_or_with_lone_surrogates_are_skippable(workspace, tmp_path):
    text = '{"text": "a"}\n' + "[" * 100_000 + "]" * 100_000 + '\n{"text": "b\\ud800"}\n'
    path = write(tmp_path / "mixed.jsonl", text)
    version, report = import_path(workspace, path, skip_bad=True)
    assert version.rows == 1 and report["skipped"] == 2
    assert [i["line"] for i in report["skipped_rows"]] == [2, 3]


def test_a_failed_import_leaves_nothing_in_the_cache(workspace, tmp_path):
    from studio.data.store import cache_dir

    before = sorted(p.name for p in cache_dir(workspace).iterdir())
    path = write(tmp_path / "bad.jsonl", '{"text": "a"}\n' * 50 + "{oops}\n")
    with pytest.raises(IngestError, match="line 51"):
        import_path(workspace, path)
    good = write(tmp_path / "good.jsonl", '{"text": "a"}\n' * 5)
    import_path(workspace, good)
    assert sorted(p.name for p in cache_dir(workspace).iterdir()) == before
