"""Quality classifier: tokenization, the label store, fastText training, scoring, threshold
flips, applying a threshold as a new version, the CLI actions, the UI handlers, and the
figures on the bundled noisy corpus (labelled from its ground truth)."""

from __future__ import annotations

import json
import random
import time

import numpy as np
import pytest

from studio.data import quality as q
from studio.paths import SAMPLE_DATA_DIR

SPEC = "sample-corpus/v0001"
NOT_QUALITY = {"exact_duplicate", "near_duplicate", "pii"}  # other steps' business


def corpus_truth() -> list[tuple[str, str, str | None]]:
    """(id, text, oracle label) per corpus row: good = no planted noise; noise = any noise
    type but duplicates and PII (the text of those is clean); None = not labelled."""
    with open(SAMPLE_DATA_DIR / "corpus.jsonl", encoding="utf-8") as fh:
        docs = [json.loads(line) for line in fh if line.strip()]
    with open(SAMPLE_DATA_DIR / "corpus_labels.jsonl", encoding="utf-8") as fh:
        noise = {d["id"]: d["noise"] for d in map(json.loads, fh)}
    out = []
    for d in docs:
        kinds = noise[d["id"]]
        label = "good" if not kinds else "noise" if set(kinds) - NOT_QUALITY else None
        out.append((d["id"], d["text"], label))
    return out


def oracle_labels(truth, n: int, seed: int = 0) -> dict[int, str]:
    """`n` labelled rows drawn at random, as a user labeling in random order would."""
    order = list(range(len(truth)))
    random.Random(seed).shuffle(order)
    return {i: truth[i][2] for i in [j for j in order if truth[j][2]][:n]}


def balanced_labels(truth, per_class: int) -> dict[int, str]:
    out: dict[int, str] = {}
    for cls in q.LABELS:
        rows = [i for i, (_, _, lab) in enumerate(truth) if lab == cls][:per_class]
        out.update(dict.fromkeys(rows, cls))
    return out


@pytest.fixture(scope="module")
def truth():
    return corpus_truth()


@pytest.fixture(scope="module")
def trained(tmp_path_factory, truth):
    """One workspace with 300 oracle labels and a model trained on them (module-wide: the
    figures test, the scoring, apply and UI tests share it)."""
    from studio.workspace import open_workspace

    ws = open_workspace(tmp_path_factory.mktemp("quality") / "ws")
    labels = oracle_labels(truth, 300)
    q.set_labels(ws, SPEC, labels)
    started = time.perf_counter()
    meta = q.train_classifier(ws, SPEC, name="noise-300")
    seconds = time.perf_counter() - started
    return {"ws": ws, "labels": labels, "meta": meta, "seconds": seconds}


# --- tokenization ------------------------------------------------------------------------


def test_tokenize_characters_and_script_runs():
    ja = "富士山は静岡県にある。カタカナー"
    assert q.tokenize(ja, "chars") == "富 士 山 は 静 岡 県 に あ る 。 カ タ カ ナ ー <len4>"
    assert q.tokenize(ja, "words") == "富士山 は 静岡県 にある 。 カタカナー <len4>"
    en = "The Mt. Fuji is 3776m high!"
    # English keeps its words in both modes; letters are lower-cased, digits kept whole.
    expected = "the mt . fuji is 3776 m high ! <len4>"
    assert q.tokenize(en, "chars") == q.tokenize(en, "words") == expected
    mixed = "Gitでcommitする\r\n２０２４年ＡＢＣ"
    assert q.tokenize(mixed, "chars") == "git で commit す る <nl> ２０２４ 年 ａｂｃ <len4>"
    assert q.tokenize(mixed, "words") == "git で commit する <nl> ２０２４ 年 ａｂｃ <len4>"


def test_tokenize_lines_repeats_and_invisible_characters():
    text = "速報です\n速報です\n\n  速報です  \nおわり\x00\u200b"
    out = q.tokenize(text, "words")
    assert "\n" not in out and "\x00" not in out and "\u200b" not in out
    # each token of a repeated line becomes <dup>: repetition weighs as much as the text
    assert out == "速報 です <nl> <dup> <dup> <nl> <nl> <dup> <dup> <nl> おわり <len4>"
    assert q.tokenize("", "chars") == "<len0>"
    with pytest.raises(q.DataError, match="unknown tokenization 'mecab'"):
        q.tokenize("x", "mecab")


def test_document_keys_are_stable():
    assert q.document_key({"id": "doc-1", "text": "a"}, "a") == "id:doc-1"
    a = q.document_key({"text": "x"}, "同じ 文書\n です")
    b = q.document_key({"id": ""}, "同じ   文書 です ")
    assert a == b and a.startswith("text:")
    assert a != q.document_key({}, "違う文書")


# --- labels ------------------------------------------------------------------------------


def test_label_store_round_trip_change_remove_and_next_version(workspace):
    ws = workspace
    rows = q.find_rows(ws, SPEC, ["doc-00001", "doc-00004", "7", "#9"])
    assert rows == {"doc-00001": 0, "doc-00004": 3, "7": 7, "#9": 9}
    report = q.set_labels(ws, SPEC, {0: "good", 3: "noise", 7: "good"})
    assert report["changed"] == 3 and report["counts"] == {"good": 2, "noise": 1}
    path = q.labels_path(ws, "sample-corpus")
    assert path == ws.root / "quality" / "labels" / "sample-corpus.jsonl"
    labels = q.load_labels(ws, "sample-corpus")
    assert labels["id:doc-00004"]["label"] == "noise"
    assert labels["id:doc-00004"]["index"] == 3 and labels["id:doc-00004"]["text"]

    # change one, remove one, re-label the same: only real changes count
    report = q.set_labels(ws, SPEC, {3: "good", 7: None, 0: "good"})
    assert (report["changed"], report["removed"]) == (1, 1)
    labels = q.load_labels(ws, "sample-corpus")
    assert {k: v["label"] for k, v in labels.items()} == {
        "id:doc-00001": "good",
        "id:doc-00004": "good",
    }
    assert not list(path.parent.glob(".*.tmp"))  # written atomically, nothing left over

    # the labels belong to the dataset: a later version (rows reordered) sees them
    from studio.data.store import open_version, write_version

    ds = open_version(ws, SPEC)
    later = write_version(
        ws, "sample-corpus", ds.select([5, 3, 0]), format="text", operation="test", parent=SPEC
    )
    doc = q.get_document(ws, later.spec, 1)
    assert doc.id == "doc-00004" and doc.key in q.load_labels(ws, "sample-corpus")

    with pytest.raises(q.DataError, match="no document with id 'nope'"):
        q.find_rows(ws, SPEC, ["nope"])
    with pytest.raises(q.DataError, match="is not one of good, noise"):
        q.set_labels(ws, SPEC, {1: "great"})


def test_rows_without_ids_are_keyed_by_text_and_odd_characters_survive(workspace):
    import datasets

    from studio.data.store import write_version

    texts = ["改行\u2028区切り\x85です", "普通の文書です。", "  普通の文書です。 "]
    first = write_version(
        workspace, "odd", datasets.Dataset.from_dict({"text": texts}), format="text",
        operation="test",
    )  # fmt: skip
    q.set_labels(workspace, first.spec, {0: "noise", 1: "good"})
    labels = q.load_labels(workspace, "odd")
    assert len(labels) == 2 and all(k.startswith("text:") for k in labels)
    assert labels[q.get_document(workspace, first.spec, 0).key]["text"] == texts[0]
    # row 2 differs from row 1 only in spacing: same key, so it is already labelled
    assert q.get_document(workspace, first.spec, 2).key in labels


def test_damaged_label_file_names_its_line(workspace):
    path = q.labels_path(workspace, "sample-corpus")
    path.parent.mkdir(parents=True)
    path.write_text('{"key": "id:a", "label": "good", "text": "x"}\n{broken\n', encoding="utf-8")
    with pytest.raises(q.DataError, match=r"sample-corpus.jsonl: line 2 is not JSON"):
        q.load_labels(workspace, "sample-corpus")
    with pytest.raises(q.DataError, match="line 2"):
        q.set_label(workspace, SPEC, 0, "good")
    assert "{broken" in path.read_text(encoding="utf-8")  # nothing overwritten


def test_label_file_import(tmp_path):
    good = tmp_path / "labels.jsonl"
    good.write_text(
        '{"id": "doc-00001", "label": "good"}\n\n{"index": 4, "label": "noise"}\n'
        '{"id": "doc-00002", "label": null}\n',
        encoding="utf-8",
    )
    assert q.read_label_file(good) == [("doc-00001", "good"), ("#4", "noise"), ("doc-00002", None)]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "label": "good"}\n{"id": "b", "label": "spam"}\n', encoding="utf-8")
    with pytest.raises(q.DataError, match="bad.jsonl: line 2: 'label' is 'spam'"):
        q.read_label_file(bad)


# --- training ----------------------------------------------------------------------------


def test_training_refuses_too_few_labels_saying_how_many_are_missing(workspace, truth):
    good = [i for i, (_, _, lab) in enumerate(truth) if lab == "good"][:12]
    noise = [i for i, (_, _, lab) in enumerate(truth) if lab == "noise"][:4]
    q.set_labels(workspace, SPEC, dict.fromkeys(good, "good") | dict.fromkeys(noise, "noise"))
    with pytest.raises(q.DataError) as err:
        q.train_classifier(workspace, SPEC, name="x")
    message = str(err.value)
    assert "at least 10 of each class" in message
    assert "have good 12, noise 4" in message and "label 6 more noise" in message
    assert not q.models_dir(workspace).exists()


def test_stratified_split_is_seeded_and_keeps_both_classes():
    labels = ["good"] * 40 + ["noise"] * 10
    train, held = q.stratified_split(labels, 0.2, seed=3)
    assert sorted(train + held) == list(range(50))
    assert sum(labels[i] == "noise" for i in held) == 2
    assert sum(labels[i] == "good" for i in held) == 8
    assert (train, held) == q.stratified_split(labels, 0.2, seed=3)
    assert held != q.stratified_split(labels, 0.2, seed=4)[1]


def test_metrics_by_hand():
    m = q.class_metrics(
        ["good", "good", "noise", "noise", "noise"], ["good", "noise", "noise", "noise", "good"]
    )
    assert m["noise"]["precision"] == pytest.approx(2 / 3, abs=1e-4)
    assert m["noise"]["recall"] == pytest.approx(2 / 3, abs=1e-4)
    assert m["good"]["precision"] == 0.5 and m["good"]["recall"] == 0.5
    assert m["confusion"]["noise"] == {"good": 1, "noise": 2}
    assert m["accuracy"] == 0.6


def test_train_save_list_load_score_round_trip(trained, truth):
    ws = trained["ws"]
    folder = ws.root / "quality" / "models" / "noise-300"
    assert (folder / "model.bin").is_file()
    assert (folder / "model.bin").stat().st_size < 40 * 2**20  # not fastText's 256 MB default
    saved = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    assert saved["dataset"] == "sample-corpus" and saved["version"] == SPEC
    assert saved["settings"]["tokenize"] == "chars" and saved["created"]
    assert sum(saved["labels"].values()) == 300 and saved["trained_on"] == 300
    held = saved["heldout"]
    assert held["n"] + held["train"] == 300 and held["noise"]["support"] >= 5
    assert [m["name"] for m in q.list_classifiers(ws)] == ["noise-300"]

    clf = q.load_classifier(ws, "noise-300")
    scores = q.score_version(ws, SPEC, "noise-300", batch_size=500)
    assert scores.shape == (len(truth),) and scores.dtype == np.float32
    assert float(scores.min()) >= 0.0 and float(scores.max()) <= 1.0
    texts = [truth[i][1] for i in (0, 3, 100)]
    assert np.allclose(clf.predict(texts), scores[[0, 3, 100]], atol=1e-6)
    assert np.array_equal(q.score_version(ws, SPEC, "noise-300"), scores)  # from the cache

    with pytest.raises(q.DataError, match="exists already"):
        q.train_classifier(ws, SPEC, name="noise-300")
    with pytest.raises(q.DataError, match="no classifier named 'missing'"):
        q.load_classifier(ws, "missing")
    with pytest.raises(q.DataError, match="model name"):
        q.train_classifier(ws, SPEC, name="../evil")


def test_retraining_under_the_same_name_replaces_the_model(workspace, truth):
    q.set_labels(workspace, SPEC, balanced_labels(truth, 12))
    settings = q.TrainSettings(tokenize="words", epoch=5)
    first = q.train_classifier(workspace, SPEC, name="small", settings=settings)
    version = q.resolve(workspace, SPEC)
    old_cache = q._score_cache_path(workspace, q.load_classifier(workspace, "small"), version)
    q.score_version(workspace, SPEC, "small")
    assert old_cache.is_file()
    again = q.train_classifier(workspace, SPEC, name="small", settings=settings, overwrite=True)
    assert again["uid"] != first["uid"]
    clf = q.load_classifier(workspace, "small")  # the new one, not the cached old one
    assert clf.meta["uid"] == again["uid"]
    assert q._score_cache_path(workspace, clf, version) != old_cache
    assert [m["name"] for m in q.list_classifiers(workspace)] == ["small"]
    assert q.load_classifier(workspace, "small").tokenize == "words"
    assert not [p for p in q.models_dir(workspace).iterdir() if p.name.startswith(".")]


# --- threshold and apply -----------------------------------------------------------------


def test_threshold_flips_on_hand_made_scores():
    scores = np.array([0.10, 0.50, 0.55, 0.69, 0.70, 0.95, 0.30], dtype=np.float32)
    assert q.kept_mask(scores, 0.5).tolist() == [False, True, True, True, True, True, False]
    up = q.flips(scores, 0.5, 0.7)  # raising it drops 0.50, 0.55, 0.69 (0.70 is kept: >=)
    assert up.indices.tolist() == [1, 2, 3] and not up.now_kept and up.count == 3
    down = q.flips(scores, 0.7, 0.25)  # lowering it brings back 0.30 .. 0.69, lowest first
    assert down.indices.tolist() == [6, 1, 2, 3] and down.now_kept
    assert q.flips(scores, 0.6, 0.6).count == 0
    summary = q.threshold_summary(scores, 0.7, previous=0.5)
    assert summary == {
        "threshold": 0.7,
        "total": 7,
        "kept": 2,
        "dropped": 5,
        "previous": 0.5,
        "flipped": 3,
        "flipped_to": "dropped",
    }
    assert q.sample_evenly(np.arange(100), 5).tolist() == [0, 25, 50, 74, 99]


def test_apply_writes_a_version_with_counts_and_parent(trained):
    ws = trained["ws"]
    scores = q.score_version(ws, SPEC, "noise-300")
    expected = int((scores >= 0.6).sum())
    done = q.apply_classifier(ws, SPEC, "noise-300", 0.6)
    assert done.parent == SPEC and done.operation == "classify" and done.rows == expected
    assert done.counts["in"] == len(scores) and done.counts["out"] == expected
    assert done.counts["removed"] == {"quality_below_threshold": len(scores) - expected}
    assert done.settings["model"] == "noise-300" and done.settings["threshold"] == 0.6
    from studio.data.store import open_version

    kept_ids = set(open_version(ws, done.spec)["id"])
    dropped = [i for i, s in enumerate(scores) if s < 0.6]
    assert f"doc-{dropped[0] + 1:05d}" not in kept_ids and len(kept_ids) == expected


def test_a_model_scores_and_filters_other_row_forms(trained):
    """A model trained on one dataset applies to any version: messages and prompt/completion
    rows are scored on their text (every message; prompt and completion)."""
    from studio.data.store import document_text, open_version

    ws = trained["ws"]
    clf = q.load_classifier(ws, "noise-300")
    for spec in ("sample-chat-ojousama/v0001", "sample-qa/v0001"):
        version = q.resolve(ws, spec)
        ds = open_version(ws, spec)
        scores = q.score_version(ws, spec, "noise-300", batch_size=100)
        assert scores.shape == (len(ds),)
        texts = [document_text(ds[i], version.format) for i in (0, len(ds) - 1)]
        assert np.allclose(clf.predict(texts), scores[[0, len(ds) - 1]], atol=1e-6)
        doc = q.get_document(ws, spec, 0)
        assert doc.text == texts[0] and doc.id
    done = q.apply_classifier(ws, "sample-qa", "noise-300", 0.5)
    assert done.format == "prompt_completion" and done.parent == "sample-qa/v0001"
    assert set(open_version(ws, done.spec).column_names) >= {"prompt", "completion"}


def test_apply_refuses_bad_thresholds_and_writes_nothing(trained, monkeypatch):
    ws = trained["ws"]
    before = sorted(p.name for p in (ws.datasets / "sample-corpus").iterdir())
    with pytest.raises(q.DataError, match="between 0 and 1"):
        q.apply_classifier(ws, SPEC, "noise-300", 1.5)
    monkeypatch.setattr(q, "score_version", lambda *a, **k: np.zeros(2240, dtype=np.float32))
    with pytest.raises(q.DataError, match="drops every document"):
        q.apply_classifier(ws, SPEC, "noise-300", 0.5)
    assert sorted(p.name for p in (ws.datasets / "sample-corpus").iterdir()) == before


# --- labeling queue ----------------------------------------------------------------------


def test_labeling_orders_and_the_queue(workspace):
    random_order = q.labeling_order(10, "random", seed=1)
    assert sorted(random_order.tolist()) == list(range(10))
    assert random_order.tolist() == q.labeling_order(10, "random", seed=1).tolist()
    scores = np.array([0.9, 0.52, 0.1, 0.45, 0.5, 0.99, 0.3, 0.6, 0.0, 0.7])
    assert q.labeling_order(10, "uncertain", 0, scores)[:4].tolist() == [4, 1, 3, 7]
    with pytest.raises(q.DataError, match="uncertain-first needs"):
        q.labeling_order(10, "uncertain", 0, None)

    queue = q.new_queue(workspace, SPEC, "random", seed=5)
    first = q.queue_next(workspace, queue)
    assert first == int(queue["order"][0])
    q.set_label(workspace, SPEC, int(queue["order"][2]), "good")  # labelled elsewhere
    second = q.queue_next(workspace, queue)
    third = q.queue_next(workspace, queue)
    assert second == int(queue["order"][1]) and third == int(queue["order"][3])  # skips it
    assert q.queue_back(queue) == second and q.queue_back(queue) == first
    assert q.queue_back(queue) == first  # stays on the first
    assert q.queue_next(workspace, queue) == second  # forward through what was shown
    assert q.queue_next(workspace, queue) == third


# --- CLI ---------------------------------------------------------------------------------


def studio(capsys, *argv) -> tuple[int, dict]:
    from studio.cli import main

    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_cli_label_train_classify_list(workspace, truth, tmp_path, capsys):
    root = str(workspace.root)
    labels = balanced_labels(truth, 15)
    ids = {lab: [truth[i][0] for i, v in labels.items() if v == lab] for lab in q.LABELS}
    code, out = studio(
        capsys, "data", "label", "sample-corpus", "--good", *ids["good"][:5],
        "--noise", *ids["noise"][:5], "--workspace", root,
    )  # fmt: skip
    assert code == 0 and out["counts"] == {"good": 5, "noise": 5}

    code, out = studio(capsys, "data", "classifier-train", "sample-corpus", "--workspace", root)
    assert code == 1 and "label 5 more good, 5 more noise" in out["error"]["message"]

    label_file = tmp_path / "more.jsonl"
    label_file.write_text(
        "".join(json.dumps({"id": i, "label": lab}) + "\n" for lab in q.LABELS for i in ids[lab]),
        encoding="utf-8",
    )
    code, out = studio(
        capsys, "data", "label", SPEC, "--from", str(label_file), "--workspace", root
    )
    assert code == 0 and out["counts"] == {"good": 15, "noise": 15}

    code, out = studio(
        capsys, "data", "classifier-train", SPEC, "--name", "cli-model", "--tokenize", "words",
        "--epoch", "10", "--workspace", root,
    )  # fmt: skip
    assert code == 0 and out["model"] == "cli-model"
    assert set(out["heldout"]) >= {"good", "noise", "accuracy", "n"}
    assert {"precision", "recall", "f1", "support"} <= set(out["heldout"]["noise"])

    code, out = studio(
        capsys, "data", "classify", SPEC, "--model", "cli-model", "--threshold", "0.5",
        "--dry-run", "--workspace", root,
    )  # fmt: skip
    assert code == 0 and "version" not in out and out["kept"] + out["dropped"] == len(truth)
    code, out = studio(
        capsys, "data", "classify", "sample-corpus", "--model", "cli-model", "--threshold",
        "0.5", "--workspace", root,
    )  # fmt: skip
    assert code == 0 and out["version"] == "sample-corpus/v0002" and out["parent"] == SPEC
    assert out["kept"] == out["counts"]["out"] and out["kept"] + out["dropped"] == len(truth)
    # the next verb accepts the reported version
    code, out2 = studio(
        capsys, "data", "classify", out["version"], "--model", "cli-model", "--dry-run",
        "--workspace", root,
    )  # fmt: skip
    assert code == 0 and out2["total"] == out["kept"]

    code, out = studio(capsys, "data", "classifiers", "--workspace", root)
    assert [m["name"] for m in out["classifiers"]] == ["cli-model"]
    code, out = studio(
        capsys, "data", "label", SPEC, "--good", "doc-00001", "--noise", "0", "--workspace", root
    )
    assert code == 1 and "row 0 is given two labels" in out["error"]["message"]
    code, out = studio(capsys, "data", "classify", SPEC, "--model", "nope", "--workspace", root)
    assert code == 1 and "no classifier named 'nope'" in out["error"]["message"]


# --- UI handlers (no browser) --------------------------------------------------------------


def test_ui_handlers_and_keyboard_snippet(trained, workspace):
    import gradio as gr

    from studio.ui import data_quality as ui

    for key, elem in {"g": "quality-good", "n": "quality-noise", "s": "quality-skip"}.items():
        assert f'"{key}": "{elem}"' in ui.KEYBOARD_JS
    assert ui.PANEL_ID in ui.KEYBOARD_JS and ui.KEYBOARD_JS.startswith("() =>")

    # labeling on a fresh workspace: start, good, noise, back, clear
    ws = workspace
    queue, info, text, counts = ui.label_step(ws, "good", None, SPEC, "random", 0, None, "en")
    assert "Row" in info and text and "0 good" in counts  # started; labelled nothing yet
    first = q.queue_current(queue)
    queue, info, _, counts = ui.label_step(ws, "good", queue, SPEC, "random", 0, None, "en")
    queue, _, _, counts = ui.label_step(ws, "noise", queue, SPEC, "random", 0, None, "ja")
    assert "良い 1 件" in counts and "ノイズ 1 件" in counts
    queue, info, _, _ = ui.label_step(ws, "back", queue, SPEC, "random", 0, None, "en")
    queue, info, _, _ = ui.label_step(ws, "back", queue, SPEC, "random", 0, None, "en")
    assert q.queue_current(queue) == first and "label: good" in info
    queue, info, _, counts = ui.label_step(ws, "clear", queue, SPEC, "random", 0, None, "en")
    assert "label: none" in info and "0 good" in counts
    with pytest.raises(gr.Error, match="10 more good and 9 more noise"):
        ui.train(ws, SPEC, "", "chars", "en")
    with pytest.raises(gr.Error, match="Pick a dataset version"):
        ui.label_step(ws, "good", None, None, "random", 0, None, "en")

    # scoring, the slider and apply on the trained workspace
    ws = trained["ws"]
    scored, summary, flips, hist = ui.score(ws, SPEC, "noise-300", 0.5, "en")
    assert "keeps" in summary and flips.empty and int(hist["n"].sum()) == len(scored["scores"])
    # a higher threshold that certainly drops some kept documents, whatever the model's scores
    kept_scores = sorted(s for s in scored["scores"] if s >= 0.5)
    higher = round(float(kept_scores[len(kept_scores) // 10]) + 1e-4, 4)
    summary, flips, previous = ui.move_threshold(ws, scored, SPEC, higher, 0.5, "en")
    moved = q.flips(scored["scores"], 0.5, higher)
    assert previous == higher and f"**{moved.count}** documents change from kept" in summary
    assert 0 < len(flips) <= ui.FLIP_SAMPLE and set(flips["Now"]) == {"dropped"}
    assert all(0.5 <= s < higher for s in flips["P(good)"])
    queue, info, _, _ = ui.start_labeling(ws, SPEC, "uncertain", 0, "noise-300", "en")
    assert "P(good)" in info
    message, spec = ui.apply(ws, SPEC, "noise-300", higher, "en")
    assert spec.startswith("sample-corpus/v") and spec in message


def test_section_builds_inside_blocks(workspace):
    from types import SimpleNamespace

    import gradio as gr

    from studio.ui import data_quality as ui
    from studio.ui.localize import Localizer

    loc = Localizer("ja")
    with gr.Blocks() as demo:
        lang = gr.Radio(["ja", "en"], value="ja")
        version = gr.Dropdown([SPEC], value=SPEC)
        ctx = SimpleNamespace(workspace=workspace, lang=lang, on_language=[])
        ui.build_section(SimpleNamespace(ctx=ctx, loc=loc, version=version, created=gr.State()))
    assert len(ctx.on_language) == 1  # its results are redrawn by the one language switch
    ids = {getattr(c, "elem_id", None) for c in demo.blocks.values()}
    assert {"quality-good", "quality-noise", "quality-skip", "quality-back", ui.PANEL_ID} <= ids
    assert {"quality-train", "quality-threshold", "quality-apply", "quality-flips"} <= ids
    assert all(isinstance(u, dict) for u in loc.updates("en"))


# --- figures on the bundled corpus -----------------------------------------------------------


def test_bundled_corpus_figures(trained, truth, artifacts_dir):
    """300 labels drawn at random (the oracle labels them), a model trained in about a
    second, then its decisions at 0.5 over the whole corpus against the planted noise."""
    ws, meta = trained["ws"], trained["meta"]
    held = meta["heldout"]
    scores = q.score_version(ws, SPEC, "noise-300")
    rated = [i for i, (_, _, lab) in enumerate(truth) if lab]
    whole = q.class_metrics(
        [truth[i][2] for i in rated], ["good" if scores[i] >= 0.5 else "noise" for i in rated]
    )
    unseen = [i for i in rated if i not in trained["labels"]]
    fresh = q.class_metrics(
        [truth[i][2] for i in unseen], ["good" if scores[i] >= 0.5 else "noise" for i in unseen]
    )
    figures = {
        "labels": meta["labels"],
        "train_seconds": round(trained["seconds"], 2),
        "heldout": held,
        "whole_corpus_at_0.5": whole,
        "unlabelled_docs_at_0.5": fresh,
    }
    (artifacts_dir / "quality_figures.json").write_text(
        json.dumps(figures, indent=2), encoding="utf-8"
    )
    print(json.dumps(figures, indent=1))
    assert meta["labels"]["noise"] >= 40  # about a fifth of random documents are noise
    assert held["good"]["precision"] >= 0.85 and held["noise"]["recall"] >= 0.5
    # (one CI run trained a different model from the same labels and seed: noise precision
    # 0.82 instead of 0.93; the floors hold for both)
    assert whole["noise"]["recall"] >= 0.75 and whole["noise"]["precision"] >= 0.8
    assert whole["good"]["precision"] >= 0.93 and whole["good"]["recall"] >= 0.93
    assert fresh["noise"]["recall"] >= 0.7 and fresh["good"]["precision"] >= 0.9


def test_the_labellers_steps_live_in_the_library(workspace):
    """good/noise label and move on, skip moves on, back returns, clear unlabels and stays;
    too few labels is refused with the figures the UI says it with."""
    queue = q.new_queue(workspace, SPEC, "random", seed=5)
    first = q.queue_next(workspace, queue)
    q.label_action(workspace, SPEC, queue, "good")
    second = q.queue_current(queue)
    assert second != first
    labels = q.load_labels(workspace, "sample-corpus").values()
    labelled = {rec["index"]: rec["label"] for rec in labels}
    assert labelled.get(first) == "good"
    q.label_action(workspace, SPEC, queue, "skip")
    assert q.queue_current(queue) not in (first, second)
    q.label_action(workspace, SPEC, queue, "back")
    assert q.queue_current(queue) == second
    q.label_action(workspace, SPEC, queue, "back")
    assert q.queue_current(queue) == first
    q.label_action(workspace, SPEC, queue, "clear")
    assert q.queue_current(queue) == first and not q.load_labels(workspace, "sample-corpus")
    with pytest.raises(q.DataError, match="unknown labelling action"):
        q.label_action(workspace, SPEC, queue, "maybe")
    with pytest.raises(q.DataError) as refused:
        q.check_enough({"good": 12, "noise": 3})
    assert refused.value.code == "too_few_labels"
    assert refused.value.params == {"min": q.MIN_PER_CLASS, "good": 12, "noise": 3,
                                    "need_good": max(0, q.MIN_PER_CLASS - 12),
                                    "need_noise": q.MIN_PER_CLASS - 3}  # fmt: skip
