"""Clustering and balance (studio.data.cluster) and `python -m studio data cluster|balance`."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from studio.cli import main
from studio.data.cluster import (
    balance_indices,
    balance_version,
    cluster_dataset,
    cluster_version,
    load_assignment,
    parse_rules,
    rules_from_table,
    terms,
)
from studio.data.store import DataError, open_version
from studio.paths import SAMPLE_DATA_DIR


def _labels() -> list[dict]:
    path = SAMPLE_DATA_DIR / "corpus_labels.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_clusters_are_reproducible_and_meaningful(workspace):
    ds = open_version(workspace, "sample-corpus")
    labels, summaries, settings = cluster_dataset(ds, "text", k=20, seed=0)
    again, _, _ = cluster_dataset(ds, "text", k=20, seed=0)
    assert np.array_equal(labels, again)
    assert len(labels) == 2240 and sum(s.size for s in summaries) == 2240
    assert settings["k"] == 20 and settings["fit_rows"] == 2240
    for s in summaries:
        assert s.top_terms and 1 <= len(s.samples) <= 3
        assert all(labels[x["index"]] == s.cluster and x["preview"] for x in s.samples)
    noise = _labels()

    def main_cluster(kind):
        rows = [i for i, r in enumerate(noise) if kind in r["noise"]]
        cluster, count = Counter(int(labels[i]) for i in rows).most_common(1)[0]
        return cluster, count / len(rows)

    bbs, share = main_cluster("bbs")
    assert share >= 0.9  # 2ch-style threads group together (measured 64/64)
    spam, share = main_cluster("keyword_spam")
    assert share >= 0.8  # keyword spam lands in the shopping cluster (42/46)
    assert {"送料無", "無料", "通販", "激安", "セール"} & set(summaries[spam].top_terms)


def test_terms_skip_grammar_and_common_words():
    got = terms("The tea ceremony は、千利休が完成させた。")
    assert "ceremony" in got and "tea" in got and "the" not in got
    assert "千利休" in got and "させ" not in got  # hiragana-only n-grams are left out


def test_balance_caps_and_weights_give_the_expected_counts():
    labels = [0] * 10 + [1] * 6 + [2] * 4 + [3] * 5
    indices, counts = balance_indices(labels, {0: 3}, {1: 2.5, 2: 0.5, 3: 2}, seed=7)
    assert counts == {
        "0": {"before": 10, "after": 3},
        "1": {"before": 6, "after": 15},
        "2": {"before": 4, "after": 2},
        "3": {"before": 5, "after": 10},
    }
    assert len(indices) == 30 and list(indices) == sorted(indices)
    per_row = Counter(indices.tolist())
    assert all(per_row[i] in (2, 3) for i in range(10, 16))  # x2.5: twice, half of them thrice
    assert all(per_row[i] == 2 for i in range(20, 25))
    again, _ = balance_indices(labels, {0: 3}, {1: 2.5, 2: 0.5, 3: 2}, seed=7)
    assert np.array_equal(indices, again)
    # A weight and a cap on one cluster: weighted first, then capped.
    capped, counts = balance_indices(labels, {1: 8}, {1: 3}, seed=0)
    assert counts["1"] == {"before": 6, "after": 8} and len(capped) == 10 + 8 + 4 + 5
    with pytest.raises(DataError, match="clusters 0-3"):
        balance_indices(labels, {9: 1}, {}, seed=0)
    with pytest.raises(DataError, match="whole number"):
        balance_indices(labels, {0: 2.5}, {}, seed=0)
    with pytest.raises(DataError, match=">= 0"):
        balance_indices(labels, {}, {0: -1}, seed=0)


def test_rules_from_the_table_and_the_command_line():
    caps, weights = rules_from_table([(0, "5", ""), (1, None, "2"), (2, float("nan"), 1)], 3)
    assert caps == {0: 5} and weights == {1: 2.0}
    with pytest.raises(DataError, match="row 2: cap 'lots' is not a number"):
        rules_from_table([(0, "", ""), (1, "lots", "")], 3)
    with pytest.raises(DataError, match="row 1: there is no cluster 7"):
        rules_from_table([(7, "1", "")], 3)
    assert parse_rules(["3=200", " 4 = 0.5"], "cap") == {3: 200.0, 4: 0.5}
    with pytest.raises(DataError, match="CLUSTER=VALUE"):
        parse_rules(["3"], "weight")


def test_balance_version_uses_the_saved_assignment(workspace):
    clustering = cluster_version(workspace, "sample-corpus", k=6, seed=1)
    assert clustering.path == workspace.root / "analysis/sample-corpus/v0001/clusters-k6.json"
    saved = load_assignment(workspace, "sample-corpus/v0001")
    assert saved.labels == clustering.labels and saved.k == 6
    sizes = Counter(clustering.labels)
    big = max(sizes, key=sizes.get)
    small = min(sizes, key=sizes.get)
    result = balance_version(workspace, "sample-corpus", caps={big: 50}, weights={small: 2}, seed=3)
    v = result.version
    assert v.spec == "sample-corpus/v0002" and v.operation == "balance"
    assert v.parent == "sample-corpus/v0001"
    assert v.rows == 2240 - sizes[big] + 50 + sizes[small]
    assert v.counts["clusters"][str(big)] == {"before": sizes[big], "after": 50}
    assert v.counts["clusters"][str(small)]["after"] == 2 * sizes[small]
    assert v.settings["assignment"] == "analysis/sample-corpus/v0001/clusters-k6.json"
    # The new version has no assignment of its own yet.
    with pytest.raises(DataError, match="cluster it first"):
        balance_version(workspace, v.spec, caps={0: 1})
    with pytest.raises(DataError, match="at least one cap or weight"):
        balance_version(workspace, "sample-corpus", caps={}, weights={})


def test_cli_cluster_and_balance_json(workspace, capsys):
    root = str(workspace.root)
    code = main(["data", "cluster", "sample-corpus", "--k", "5", "--workspace", root, "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["ok"] and out["source"] == "sample-corpus/v0001" and out["k"] == 5
    assert len(out["clusters"]) == 5 and out["assignment"].endswith("clusters-k5.json")
    assert all(c["top_terms"] and c["samples"] for c in out["clusters"])

    code = main(
        ["data", "balance", "sample-corpus", "--cap", "0=10", "--weight", "1=1.5"]
        + ["--seed", "2", "--workspace", root, "--json"]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["version"] == "sample-corpus/v0002"
    assert out["counts"]["clusters"]["0"]["after"] == 10
    before = out["counts"]["clusters"]["1"]["before"]
    assert out["counts"]["clusters"]["1"]["after"] == before + round(0.5 * before)

    code = main(["data", "balance", "sample-corpus", "--cap", "x=1", "--workspace", root, "--json"])
    bad = json.loads(capsys.readouterr().out)
    assert code == 1 and "CLUSTER=VALUE" in bad["error"]["message"]
    code = main(["data", "cluster", "sample-corpus", "--k", "1", "--workspace", root, "--json"])
    bad = json.loads(capsys.readouterr().out)
    assert code == 1 and "between 2 and" in bad["error"]["message"]
