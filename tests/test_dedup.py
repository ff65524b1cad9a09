"""Exact and near-duplicate removal (studio.data.dedup) and `python -m studio data dedup`."""

from __future__ import annotations

import json

import datasets
import pytest

from studio.cli import main
from studio.data import dedup
from studio.data.dedup import (
    DedupSettings,
    dedup_version,
    find_duplicates,
    jaccard,
    load_clusters,
    normalize,
    shingle_hashes,
    shingle_sets,
    shingles,
    sketch_batch,
)
from studio.data.store import DataError, open_version
from studio.paths import SAMPLE_DATA_DIR

ARTICLE = (
    "富士山は山梨県と静岡県にまたがる日本一高い山で、標高は3776メートルです。"
    "夏の登山シーズンには多くの人が山頂を目指し、山小屋に泊まって御来光を待ちます。"
    "2013年には世界文化遺産に登録されました。"
)
OTHER = (
    "緑茶にはカテキンやカフェインが含まれています。番茶は新芽を摘んだ後の葉で作られ、"
    "すっきりした味わいです。お湯の温度を下げると渋みが抑えられます。"
)


def _ds(texts: list[str]) -> datasets.Dataset:
    return datasets.Dataset.from_dict({"id": [f"d{i}" for i in range(len(texts))], "text": texts})


def _labels() -> list[dict]:
    path = SAMPLE_DATA_DIR / "corpus_labels.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_normalize_and_shingle_hashes_match_the_string_definition():
    assert normalize("ＡＢＣ　１２３\n\n  abc\t") == "ABC 123 abc"
    texts = [normalize(t) for t in (ARTICLE, OTHER, "abc", "", "富士山は日本一")]
    arrays = shingle_hashes(texts, 5)
    for text, hashed in zip(texts, arrays, strict=True):
        assert len(hashed) == len(shingles(text, 5))
        assert len(set(hashed.tolist())) == len(set(shingles(text, 5)))
    # Jaccard on the hashed sets equals Jaccard on the shingle strings.
    a, b = normalize(ARTICLE), normalize(ARTICLE.replace("。", "．", 2))
    exact = jaccard(set(shingles(a, 5)), set(shingles(b, 5)))
    hashed_a, hashed_b = shingle_sets([a, b], 5)
    assert jaccard(hashed_a, hashed_b) == pytest.approx(exact)
    assert 0.5 < exact < 1


def test_exact_and_near_duplicates_on_small_documents():
    texts = [
        ARTICLE,
        OTHER,
        ARTICLE,  # byte-identical copy
        ARTICLE.replace("\n", " ").replace("3776", "３７７６"),  # same after NFKC
        ARTICLE.replace("、", ",", 1).replace("。", "!", 1).replace("ます。", "ます!!", 1),
        "富士山は日本で一番高い山ですが、今日は天気が悪くて見えませんでした。",  # same topic
    ]
    report = find_duplicates(_ds(texts), "text", DedupSettings(), num_proc=1)
    assert report.removed == [2, 3, 4]
    assert report.exact_removed == 2 and report.near_removed == 1
    [cluster] = report.clusters
    assert cluster.kept.index == 0 and cluster.kept.id == "d0"
    kinds = {m.index: (m.kind, m.jaccard) for m in cluster.members}
    assert kinds[2] == ("exact", 1.0) and kinds[3] == ("exact", 1.0)
    assert kinds[4][0] == "near" and 0.7 <= kinds[4][1] < 1.0

    exact = find_duplicates(_ds(texts), "text", DedupSettings(exact_only=True), num_proc=1)
    assert exact.removed == [2, 3] and exact.candidate_pairs == 0


def test_jaccard_confirmation_rejects_an_lsh_candidate():
    """B contains every shingle of A plus a tail whose shingles never win a MinHash slot:
    the two signatures are identical, so LSH (and the signature screening) pass the pair,
    but the exact Jaccard is below the threshold and the documents stay apart."""
    settings = DedupSettings(threshold=0.9, num_perm=8).validate()
    base = normalize(ARTICLE)
    for n in range(500):
        tail = f" 追記{n}：山頂付近は夏でも寒い。"
        hashes, _, digests = sketch_batch([base, base + tail], 5, 8, settings.seed, True)
        sets = shingle_sets([base, base + tail], 5)
        if (digests[0] == digests[1]).all() and jaccard(*sets) < settings.threshold:
            break
    else:  # pragma: no cover - the search is deterministic and succeeds early
        pytest.fail("no pair with equal signatures found")
    report = find_duplicates(_ds([base, base + tail]), "text", settings, num_proc=1)
    assert report.candidate_pairs == 1 and report.screened_pairs == 1
    assert report.confirmed_pairs == 0 and report.removed == []


def test_settings_and_bad_input_are_reported():
    with pytest.raises(DataError, match="threshold"):
        DedupSettings(threshold=1.5).validate()
    with pytest.raises(DataError, match="num_perm"):
        DedupSettings(num_perm=100).validate()
    with pytest.raises(DataError, match="no text column"):
        find_duplicates(datasets.Dataset.from_dict({"body": ["a"]}), "text")
    assert dedup.lsh_bands(0.7, 64) == 16  # 4 rows a band: P(candidate | J=0.7) = 0.99


def test_bundled_corpus_precision_and_recall(workspace):
    """Removed documents against the planted labels of the bundled corpus.

    The corpus's clean documents are built from one fact table and many of them are
    near-copies of each other (the same sentences in another order: Jaccard up to 0.99),
    which the labels do not mark; precision against the labels is therefore low at the
    default threshold and rises with it. Figures: see /tmp/dedup_readme.md."""
    labels = _labels()
    dups = {i for i, r in enumerate(labels) if r.get("duplicate_of")}
    exact = {i for i, r in enumerate(labels) if "exact_duplicate" in r["noise"]}
    index = {r["id"]: i for i, r in enumerate(labels)}
    ds = open_version(workspace, "sample-corpus")

    def score(settings):
        removed = set(find_duplicates(ds, "text", settings, num_proc=1).removed)
        hit = len(removed & dups)
        return hit / len(removed), hit / len(dups), removed

    precision, recall, removed = score(DedupSettings(exact_only=True))
    assert precision == 1.0 and removed >= exact  # 9 near copies are equal after NFKC

    report = find_duplicates(ds, "text", DedupSettings(), num_proc=1)
    removed = set(report.removed)
    assert len(removed & dups) / len(dups) >= 0.95  # measured 1.000
    # Every planted copy sits in the same cluster as the document it copies.
    cluster_of = {}
    for n, c in enumerate(report.clusters):
        for m in (c.kept, *c.members):
            cluster_of[m.index] = n
    for i in dups:
        assert cluster_of[i] == cluster_of[index[labels[i]["duplicate_of"]]]

    precision, recall, _ = score(DedupSettings(threshold=0.85))
    assert precision >= 0.75 and recall >= 0.95  # measured 0.786 and 0.976


def test_workers_give_the_same_result(workspace, monkeypatch):
    monkeypatch.setattr(dedup, "PARALLEL_MIN_ROWS", 0)
    ds = open_version(workspace, "sample-corpus")
    one = find_duplicates(ds, "text", num_proc=1)
    two = find_duplicates(ds, "text", num_proc=2)
    assert one.removed == two.removed and one.counts() == two.counts()


def test_dedup_version_writes_a_version_and_its_clusters(workspace):
    result = dedup_version(workspace, "sample-corpus", num_proc=1)
    v = result.version
    assert v.spec == "sample-corpus/v0002" and v.parent == "sample-corpus/v0001"
    assert v.operation == "dedup" and v.rows == v.counts["out"] == 2240 - len(result.report.removed)
    assert v.counts["removed"]["exact_duplicate"] > 0 and v.counts["removed"]["near_duplicate"] > 0
    assert v.settings["threshold"] == 0.7 and v.settings["shingle"] == 5
    assert (
        result.clusters_path == workspace.root / "analysis/sample-corpus/v0002/dedup-clusters.json"
    )
    saved = load_clusters(workspace, v.spec)
    assert (
        saved["parent"] == "sample-corpus/v0001" and len(saved["clusters"]) == v.counts["clusters"]
    )
    kept_ids = set(open_version(workspace, v.spec)["id"])
    for c in saved["clusters"]:
        assert c["kept"]["id"] in kept_ids
        assert all(m["id"] not in kept_ids for m in c["members"])
    view = dedup.cluster_view(workspace, saved["parent"], saved["clusters"], page=2, per_page=5)
    assert view["page"] == 2 and len(view["clusters"]) == 5
    assert all(c["kept"]["text"] and c["members"][0]["text"] for c in view["clusters"])
    # The original version is untouched.
    assert open_version(workspace, "sample-corpus/v0001").num_rows == 2240


def test_cli_dedup_json(workspace, capsys):
    root = str(workspace.root)
    code = main(["data", "dedup", "sample-corpus", "--workspace", root, "--json", "--show", "3"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["ok"] and out["version"] == "sample-corpus/v0002"
    assert out["parent"] == "sample-corpus/v0001" and len(out["clusters"]) == 3
    assert out["counts"]["in"] == 2240 and out["counts"]["out"] == out["rows"]

    code = main(["data", "dedup", out["version"], "--exact-only", "--workspace", root, "--json"])
    again = json.loads(capsys.readouterr().out)
    assert code == 0 and again["version"] == "sample-corpus/v0003"
    assert again["counts"]["removed"] == {"exact_duplicate": 0, "near_duplicate": 0}

    code = main(
        ["data", "dedup", "sample-corpus", "--threshold", "2", "--workspace", root, "--json"]
    )
    bad = json.loads(capsys.readouterr().out)
    assert code == 1 and not bad["ok"] and "threshold" in bad["error"]["message"]
    code = main(["data", "dedup", "no-such-data", "--workspace", root, "--json"])
    assert code == 1 and "no-such-data" in json.loads(capsys.readouterr().out)["error"]["message"]
