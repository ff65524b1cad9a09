"""The bundled sample data: shapes the later features rely on, and reproducibility."""

import json
import subprocess
import sys
from collections import Counter

import pytest

from studio.paths import SAMPLE_DATA_DIR
from tests.conftest import REPO, child_env


def rows(name: str) -> list[dict]:
    with open(SAMPLE_DATA_DIR / name, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def is_japanese(text: str) -> bool:
    return sum("\u3040" <= c <= "\u30ff" or "\u4e00" <= c <= "\u9fff" for c in text) > len(text) / 4


def test_corpus_is_large_mixed_and_noisy():
    corpus = rows("corpus.jsonl")
    labels = rows("corpus_labels.jsonl")
    assert len(corpus) >= 2000
    assert [d["id"] for d in corpus] == [lab["id"] for lab in labels]
    assert len({d["id"] for d in corpus}) == len(corpus)
    japanese = sum(is_japanese(d["text"]) for d in corpus)
    assert 0.55 < japanese / len(corpus) < 0.9  # mixed Japanese/English
    planted = Counter(kind for lab in labels for kind in lab["noise"])
    for kind in (
        "ad_boilerplate",
        "navigation",
        "repeated_lines",
        "exact_duplicate",
        "near_duplicate",
        "short_fragment",
        "mojibake",
        "keyword_spam",
    ):
        assert planted[kind] >= 20, kind
    by_id = {d["id"]: d["text"] for d in corpus}
    exact = [lab for lab in labels if "exact_duplicate" in lab["noise"]]
    assert all(by_id[lab["id"]] == by_id[lab["duplicate_of"]] for lab in exact)


def test_chat_set_teaches_the_persona():
    chats = rows("chat_ojousama.jsonl")
    assert len(chats) >= 300
    for chat in chats:
        roles = [m["role"] for m in chat["messages"]]
        assert roles[0] == "system" and roles[-1] == "assistant"
        assert roles[1:] == ["user", "assistant"] * ((len(roles) - 1) // 2)
    replies = [m["content"] for c in chats for m in c["messages"] if m["role"] == "assistant"]
    markers = (
        "わ。",
        "わね",
        "わよ",
        "の。",
        "のよ",
        "ですの",
        "ますの",
        "かしら",
        "まし",
        "ごきげんよう",
        "わたくし",
    )
    in_character = [r for r in replies if any(m in r for m in markers)]
    assert len(in_character) / len(replies) > 0.95
    assert not [r for r in replies if r.rstrip("。！？").endswith(("だ", "である"))]


def test_prompt_completion_set():
    qa = rows("qa_pc.jsonl")
    assert len(qa) >= 300
    assert all(q["prompt"] and q["completion"] and not q["completion"].startswith(" ") for q in qa)


def test_eval_sets():
    items, shots = rows("eval_qa.jsonl"), rows("eval_qa_shots.jsonl")
    assert len(items) == 50 and len(shots) == 3
    assert all(len(i["answers"]) >= 2 for i in items)
    assert not {s["question"] for s in shots} & {i["question"] for i in items}
    ranking = rows("eval_rank.jsonl")
    assert len(ranking) == 50
    for item in ranking:
        assert item["template"].count("{word}") == 1
        assert 5 <= len(item["candidates"]) <= 10 and item["answer"] in item["candidates"]
    assert Counter(i["candidates"].index(i["answer"]) for i in ranking).most_common(1)[0][1] < 40


def test_sample_data_is_small():
    total = sum(p.stat().st_size for p in SAMPLE_DATA_DIR.iterdir())
    assert total < 5 * 2**20


@pytest.mark.slow
def test_generator_reproduces_the_bundled_files(tmp_path):
    out = subprocess.run(
        [sys.executable, "assets/build_sample_data.py", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    for path in SAMPLE_DATA_DIR.glob("*.jsonl"):
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name
