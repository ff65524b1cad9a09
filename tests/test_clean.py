"""The cleaning pipeline: filters, pipeline YAML, runs over dataset versions, the CLI, and
precision/recall of the default Japanese pipeline on the bundled noisy corpus."""

from __future__ import annotations

import json
import sys
import unicodedata
from pathlib import Path

import pytest
import yaml
from hojichar import Document
from hojichar.filters.document_filters import CharRepetitionRatioFilter

from studio.cli import main
from studio.data.clean import (
    Cleaner,
    load_pipeline,
    parse_pipeline,
    pipeline_from_rows,
    pipeline_to_rows,
    pipeline_words,
    preset,
    resolve_pipeline,
    run_pipeline,
    save_pipeline,
    validate_pipeline,
)
from studio.data.filters import FILTERS, PipelineError, build_filter, read_word_list
from studio.data.store import DataError, open_version, write_version
from studio.paths import ASSETS_DIR, SAMPLE_DATA_DIR

# What the cleaning is responsible for (duplicates are deduplication's job; pii documents are
# kept and masked; bbs: only the junk threads).
CLEANING_NOISE = {
    "ad_boilerplate",
    "navigation",
    "repeated_lines",
    "short_fragment",
    "mojibake",
    "keyword_spam",
    "ellipsis_lines",
}


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def rejected(name: str, text: str, **params) -> bool:
    spec = FILTERS[name]
    full = {p.name: p.default for p in spec.params} | params
    doc = Document(text)
    build_filter(name, full).apply(doc)
    return doc.is_rejected


def rewritten(name: str, text: str, **params) -> str:
    spec = FILTERS[name]
    full = {p.name: p.default for p in spec.params} | params
    doc = Document(text)
    build_filter(name, full).apply(doc)
    assert not doc.is_rejected
    return doc.text


JA = (
    "富士山は静岡県と山梨県にまたがる日本一高い山で、標高は3776メートルです。"
    "夏の登山シーズンには、多くの人が山頂を目指して登ります。"
)
EN = "Mount Fuji is the highest mountain in Japan. Many people climb it in summer every year."


# --- filters, one at a time -------------------------------------------------------------


def test_mojibake():
    broken_cp932 = JA.encode("utf-8").decode("cp932", errors="replace")
    broken_latin1 = JA.encode("utf-8").decode("latin-1")
    broken_cp1252 = "It\u2019s a caf\u00e9 \u2014 really".encode().decode("cp1252", "replace")
    replacement = "これは\ufffd\ufffd\ufffd文字化けした\ufffd\ufffd文章です" * 2
    for text in (broken_cp932, broken_latin1, broken_cp1252 * 3, replacement):
        assert rejected("mojibake", text), text[:40]
    for text in (JA, EN, "Un café à Paris, voilà tout — très bien.", ""):
        assert not rejected("mojibake", text)


def test_japanese_and_hiragana_ratio():
    assert not rejected("japanese_ratio", JA)
    assert not rejected("japanese_ratio", EN)  # mostly ASCII: not judged (keep_ascii_docs)
    assert rejected("japanese_ratio", EN, keep_ascii_docs=False)
    assert rejected("japanese_ratio", "Москва — столица России, крупнейший город страны." * 2)
    assert rejected("japanese_ratio", "서울은 대한민국의 수도이며 가장 큰 도시입니다. " * 3)
    catalogue = "宇治抹茶 緑茶 煎茶 玉露 番茶 焙茶 抹茶 新茶 限定 特選 最高級 国産 贈答 人気 " * 5
    assert rejected("hiragana_ratio", catalogue)
    assert not rejected("hiragana_ratio", JA * 2)
    assert not rejected("hiragana_ratio", "東京都")  # too few Japanese characters to judge
    assert rejected("ascii_ratio", JA)
    assert not rejected("ascii_ratio", EN)


def test_duplicate_lines_and_repetition():
    repeated = "\n".join(["同じ行が何度も繰り返されるテキストです。"] * 10 + [JA])
    assert rejected("duplicate_lines", repeated)
    assert not rejected("duplicate_lines", JA + "\n" + EN + "\n" + JA[:20])
    assert rejected("compression_ratio", repeated * 3)
    assert not rejected("compression_ratio", JA * 2)
    assert rejected("char_repetition", "最安値通販" * 50 + JA)
    assert not rejected("char_repetition", JA)


def test_char_repetition_matches_hojichar():
    """Our Counter-based ratio is HojiChar's BigScience ratio, only faster."""
    ours = FILTERS["char_repetition"].build
    texts = [d["text"] for d in read_jsonl(SAMPLE_DATA_DIR / "corpus.jsonl")][:300]
    texts += ["", "abc", "aaaaaaa", "ab" * 50]
    for n in (3, 5, 10):
        for text in texts:
            a = ours().compute_character_repetition_ratio(text, n)
            b = CharRepetitionRatioFilter.compute_character_repetition_ratio(text, n)
            assert a == pytest.approx(b), (n, text[:30])


def test_keyword_spam():
    spam = " ".join(["激安", "通販", "最安値", "抹茶", "激安", "送料無料", "抹茶", "激安"] * 6)
    assert rejected("keyword_spam", spam)
    assert rejected("keyword_spam", "cheap cheap best price cat food cheap online " * 6)
    # a long English article: its plain type-token ratio falls below 0.5, its windows' do not
    english = [
        d["text"] for d in read_jsonl(SAMPLE_DATA_DIR / "corpus.jsonl") if d["text"].isascii()
    ]
    article = "\n".join(english[:40])
    tokens = article.split()
    assert len(tokens) > 1000 and len(set(tokens)) < 0.5 * len(tokens)
    assert not rejected("keyword_spam", article)
    assert not rejected("keyword_spam", "short list a b a b")  # too few tokens to judge


def test_ad_and_nav_lines():
    article = JA + "\n" + JA
    ad = "＼期間限定／ 全品ポイント10倍！\n" + article + "\n送料無料\n▶ カートに入れる"
    assert rejected("ad_lines", ad)
    assert rejected("ad_lines", EN + "\nBuy now\nFree shipping on orders over $50")
    assert not rejected("ad_lines", article)
    assert not rejected("ad_lines", "送料無料の店を探して、近所の商店街を歩いてみました。" + JA)
    nav = "ホーム > 料理 > 味噌汁\n" + article + "\n« 前の記事　|　次の記事 »\n関連記事"
    assert rejected("nav_lines", nav)
    assert rejected("nav_lines", "Home > Blog > Tea\n" + EN + "\nRecent Posts\nArchives")
    assert not rejected("nav_lines", article + "\n検索エンジンで調べてみた。")
    stripped = rewritten("nav_lines", nav, action="strip")
    assert stripped == article
    assert rejected(
        "ad_lines", article + "\nお試し価格", extra_patterns=["お試し価格"], min_lines=1
    )


BBS_JUNK = "\n\n".join(
    [
        "1 名前：名無しさん 2021/11/07(日) 08:10:31.15 ID:5srvD28f\n有田焼と伊万里焼って何が違うの？",
        "2 名前：名無しさん 2021/11/07(日) 08:19:53.03 ID:nBcQWaje\nｗｗｗ",
        "3 名前：名無しさん 2021/11/07(日) 08:24:02.44 ID:DFhyn+/z\n>>2\nそれな",
        "4 名前：名無しさん 2021/11/07(日) 08:24:47.02 ID:g58zT1VU\nage",
        "5 名前：名無しさん 2021/11/07(日) 08:25:47.02 ID:g58zT1VU\nマジかよマジかよマジかよ",
    ]
)
BBS_INFO = "\n\n".join(
    [
        "1 名前：名無しさん 2021/11/07(日) 08:10:31.15 ID:5srvD28f\n有田焼と伊万里焼って何が違うの？",
        "2 名前：名無しさん 2021/11/07(日) 08:19:53.03 ID:nBcQWaje\n>>1\n"
        "有田焼は佐賀県有田町を中心に作られる磁器で、伊万里港から積み出されたので伊万里焼とも呼ばれた。",
        "3 名前：名無しさん 2021/11/07(日) 08:24:02.44 ID:DFhyn+/z\nｗｗｗ",
        "4 名前：名無しさん 2021/11/07(日) 08:24:47.02 ID:g58zT1VU\n"
        "備前焼は釉薬を使わずに高温でじっくり焼き締める焼き物だよ",
    ]
)


def test_bbs_junk():
    assert rejected("bbs_junk", unicodedata.normalize("NFKC", BBS_JUNK))
    assert not rejected("bbs_junk", unicodedata.normalize("NFKC", BBS_INFO))
    assert rejected("bbs_junk", BBS_INFO, min_content_ratio=1.01)  # drop every thread
    assert not rejected("bbs_junk", JA + "\n2021/11/07 の日記")  # not a thread


def test_ellipsis_and_short_lines():
    snippets = "\n".join(
        [
            "2016.11.15 十五夜は旧暦の8月15日の夜のことで…",
            "2019.03.23 北陸新幹線は、2024年3月に金沢...",
            "富士山は静岡県と山梨県の県境‥",
            "The Moon orbits the Earth in about 27.3 days and t...",
        ]
    )
    assert rejected("ellipsis_lines", snippets)
    assert rejected("ellipsis_lines", unicodedata.normalize("NFKC", snippets))
    assert not rejected("ellipsis_lines", JA + "\nそれで…\n" + JA + "\n" + JA)
    menu = "\n".join(["ホーム", "記事一覧", "カテゴリー", "お問い合わせ", "検索", JA])
    assert rejected("short_lines", menu)
    # blank lines between paragraphs do not count as short lines (HojiChar counts them)
    assert not rejected("short_lines", "\n\n".join(["## 見出し", JA, JA, JA, JA, JA]))


def test_ng_words():
    assert rejected("ng_words", "ここに出会い系の広告", words=["出会い系"])
    assert not rejected("ng_words", "アスパラガスを茹でる", words=["アス"])  # katakana boundary
    assert rejected("ng_words", "アスパラガスを茹でる", words=["アス"], katakana_boundary=False)
    assert rejected("ng_words", "Try our ONLINE CASINO now", words=["online casino"])
    assert not rejected("ng_words", "scasinox", words=["casino"])  # whole ASCII words
    assert not rejected("ng_words", JA, words=[])


def test_pii_mask():
    text = (
        "連絡先：misaki.t@example.com\n予約はお電話で 06-6625-2125 へ。\n"
        "フリーダイヤル 0120-589-293、携帯 080-9565-2397\n"
        "Call us: +81-80-6627-2711 or +81-120-821-597.\n"
        "標高は3776メートル、2021/11/07 に 1,000 円、バージョン 0.9.2、ID:5srvD28f"
    )
    assert rewritten("pii_mask", text) == (
        "連絡先：[EMAIL]\n予約はお電話で [PHONE] へ。\n"
        "フリーダイヤル [PHONE]、携帯 [PHONE]\n"
        "Call us: [PHONE] or [PHONE].\n"
        "標高は3776メートル、2021/11/07 に 1,000 円、バージョン 0.9.2、ID:5srvD28f"
    )
    assert rewritten("pii_mask", "a@example.jp", email=False) == "a@example.jp"
    assert rewritten("pii_mask", "TEL 045-874-3282", phone_mask="<TEL>") == "TEL <TEL>"
    # HojiChar's own masking, for users who prefer its partial style
    assert rewritten("hojichar_pii_mask", "090-1234-5678") == "090-1234-XXXX"


def test_hojichar_adapters_build():
    for name, spec in FILTERS.items():
        f = build_filter(name, {p.name: p.default for p in spec.params})
        doc = Document(JA)
        f.apply(doc)
        if spec.rewrites:
            assert not doc.is_rejected
    assert rejected("doc_length", "短い", min_chars=5)
    assert not rejected("doc_length", JA, min_chars=5)


# --- pipeline YAML ----------------------------------------------------------------------


def test_presets_round_trip(tmp_path):
    for name in ("ja", "en", "mixed"):
        p = preset(name)
        assert p.steps and p.name == name
        again = parse_pipeline(p.to_yaml())
        assert again.to_dict() == p.to_dict()
        path = save_pipeline(p, tmp_path / f"{name}.yaml")
        assert load_pipeline(path).to_dict() == p.to_dict()
    assert resolve_pipeline(None).name == "ja"  # the default
    assert resolve_pipeline(str(tmp_path / "en.yaml")).name == "en"
    # defaults are filled in: a short YAML becomes explicit
    short = parse_pipeline("steps:\n  - filter: doc_length\n    min_chars: 10\n")
    assert short.steps[0].params == {"min_chars": 10, "max_chars": 100000}
    assert short.steps[0].enabled is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "steps:\n  - filter: nfkc\n  - filter: frobnicate\n",
            "step 2: unknown filter 'frobnicate'",
        ),
        (
            "steps:\n  - filter: doc_length\n    min_len: 3\n",
            "step 1 (doc_length): unknown parameter 'min_len'",
        ),
        (
            "steps:\n  - filter: doc_length\n    min_chars: lots\n",
            "step 1 (doc_length): min_chars must be an integer, got 'lots'",
        ),
        (
            "steps:\n  - filter: nfkc\n  - filter: mojibake\n    max_ratio: 3\n",
            "step 2 (mojibake): max_ratio must be at most 1.0",
        ),
        (
            "steps:\n  - filter: nfkc\n    enabled: maybe\n",
            "step 1 (nfkc): enabled must be true or false",
        ),
        (
            "steps:\n  - filter: ad_lines\n    action: burn\n",
            "step 1 (ad_lines): action must be one of drop, strip",
        ),
        (
            "steps:\n  - filter: nav_lines\n    extra_patterns: ['(unclosed']\n",
            "step 1 (nav_lines): extra_patterns: '(unclosed' is not a regular expression",
        ),
        ("steps:\n  - min_chars: 3\n", "step 1: 'filter' is missing"),
        ("steps: []\n", "'steps:' must be a non-empty list"),
        ("name: x\nstepz: []\n", "unknown top-level key 'stepz'"),
        ("steps:\n  - filter: nfkc\n   bad: [\n", "my.yaml line 3: not valid YAML"),
    ],
)
def test_validation_errors(text, message):
    with pytest.raises(PipelineError) as err:
        parse_pipeline(text, "my.yaml")
    assert message in str(err.value)
    assert str(err.value).startswith("my.yaml")


def test_table_rows_round_trip():
    p = preset("ja")
    rows = pipeline_to_rows(p)
    assert [r[1] for r in rows] == [s.filter for s in p.steps]
    ng_settings = yaml.safe_load(next(r[2] for r in rows if r[1] == "ng_words"))
    assert "words" not in ng_settings and "words_file" in ng_settings
    again = pipeline_from_rows(rows, pipeline_words(p))
    assert again.to_dict()["steps"] == p.to_dict()["steps"]
    # the user switches a filter off and edits a threshold
    rows[2][0] = False
    rows[3][2] = "max_line_ratio: 0.5, max_char_ratio: 0.4, min_lines: 4"
    edited = pipeline_from_rows(rows + [[None, "", ""]], "禁止語\n\n# comment\n禁止語\n")
    assert edited.steps[2].enabled is False
    assert edited.steps[3].params == {"max_line_ratio": 0.5, "max_char_ratio": 0.4, "min_lines": 4}
    assert pipeline_words(edited) == "禁止語"
    with pytest.raises(PipelineError, match="step 2 .doc_length.: max_chars must be"):
        pipeline_from_rows([[True, "nfkc", ""], [True, "doc_length", "max_chars: -1"]])
    with pytest.raises(PipelineError, match="step 1: settings"):
        pipeline_from_rows([[True, "doc_length", "min_chars: [1"]])
    # words but no ng_words step: one is added before the masking
    added = pipeline_from_rows([[True, "nfkc", ""], [True, "pii_mask", ""]], "spam")
    assert [s.filter for s in added.steps] == ["nfkc", "ng_words", "pii_mask"]


def test_ng_word_file_not_utf8(tmp_path):
    bad = tmp_path / "ng_sjis.txt"
    bad.write_bytes("出会い系\n無修正\n".encode("cp932"))
    with pytest.raises(PipelineError) as err:
        read_word_list(bad)
    assert "ng_sjis.txt" in str(err.value) and "not UTF-8" in str(err.value)
    yaml_path = tmp_path / "p.yaml"
    yaml_path.write_text(
        "steps:\n  - filter: ng_words\n    words_file: ng_sjis.txt\n", encoding="utf-8"
    )
    with pytest.raises(PipelineError, match=r"p.yaml: .*ng_sjis.txt is not UTF-8"):
        load_pipeline(yaml_path)  # resolved beside the YAML file
    good = tmp_path / "ng.txt"
    good.write_text("\ufeff出会い系\n# comment\n\nviagra\n", encoding="utf-8")
    assert read_word_list(good) == ["出会い系", "viagra"]
    p = validate_pipeline({"steps": [{"filter": "ng_words", "words_file": str(good)}]})
    assert rejected("ng_words", "Cheap VIAGRA here", **p.steps[0].params)


# --- running over dataset versions --------------------------------------------------------


def _small_version(ws, rows, fmt="text", name="tiny"):
    import datasets

    return write_version(
        ws,
        name,
        datasets.Dataset.from_list(rows),
        format=fmt,
        operation="test",
        parent=None,
    )


def test_run_over_a_version(workspace):
    rows = [
        {"id": "keep-1", "text": JA + "\n連絡先：taro@example.com"},
        {"id": "keep-2", "text": EN + " Its summit is 3,776 meters above sea level."},
        {"id": "short", "text": "続きはこちら"},
        {"id": "dup", "text": "\n".join(["同じ行がずっと続いていくだけの文書です。"] * 12)},
        {"id": "keep-3", "text": "ＡＢＣ　" + JA},  # NFKC rewrites full-width letters
        {"id": "mojibake", "text": JA.encode("utf-8").decode("cp932", errors="replace")},
    ]
    source = _small_version(workspace, rows)
    for procs in (1, 2):
        result = run_pipeline(workspace, source.spec, "ja", num_proc=procs)
        v = result.version
        assert v.parent == source.spec and v.operation == "clean" and v.rows == 3
        assert v.settings["pipeline"]["name"] == "ja"
        assert v.counts["in"] == 6 and v.counts["out"] == 3
        assert v.counts["removed"]["1. mojibake"] == 1
        assert v.counts["removed"]["3. doc_length"] == 1
        assert v.counts["removed"]["4. duplicate_lines"] == 1
        assert v.counts["rewritten"] == {"2. nfkc": 2, "16. pii_mask": 1}
        kept = open_version(workspace, v).to_list()
        assert [r["id"] for r in kept] == ["keep-1", "keep-2", "keep-3"]
        assert kept[0]["text"].endswith("連絡先:[EMAIL]")  # NFKC, then masking
        assert kept[2]["text"].startswith("ABC ")
        report = result.report
        assert report["num_proc"] == procs
        by_step = {s["step"]: s for s in report["steps"]}
        assert by_step["3. doc_length"]["removed_bytes"] == len("続きはこちら".encode())
        assert by_step["3. doc_length"]["samples"][0]["id"] == "short"
        assert all(s["seconds"] >= 0 for s in report["steps"])
        assert sum(h["before"] for h in report["histogram"]) == 6
        assert sum(h["after"] for h in report["histogram"]) == 3
    # the source version is untouched, and nothing is left in the map cache
    assert open_version(workspace, source).to_list() == rows
    assert not list((workspace.root / ".cache").rglob("cache-*.arrow"))


def test_run_other_row_forms(workspace):
    chats = [
        {
            "messages": [
                {"role": "user", "content": "電話番号を教えて"},
                {"role": "assistant", "content": JA + " 電話は 03-1234-5678 です。"},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": "出会い系"},
                {"role": "assistant", "content": JA},
            ]
        },
    ]
    source = _small_version(workspace, chats, fmt="messages", name="chat")
    result = run_pipeline(workspace, source, "ja")
    kept = open_version(workspace, result.version).to_list()
    assert len(kept) == 1
    assert kept[0]["messages"][1]["content"].endswith("電話は [PHONE] です。")
    assert kept[0]["messages"][0] == {"role": "user", "content": "電話番号を教えて"}
    pc = [{"prompt": "質問: 連絡先は?\n回答: ", "completion": "a@example.org " + JA}]
    source = _small_version(workspace, pc, fmt="prompt_completion", name="qa")
    kept = open_version(workspace, run_pipeline(workspace, source, "ja").version).to_list()
    assert kept[0]["prompt"] == "質問: 連絡先は?\n回答: "
    assert kept[0]["completion"].startswith("[EMAIL] ")


def test_run_errors(workspace):
    source = _small_version(workspace, [{"text": "短い"}])
    with pytest.raises(DataError, match="left no rows"):
        run_pipeline(workspace, source, "ja")
    off = preset("ja")
    for step in off.steps:
        step.enabled = False
    with pytest.raises(DataError, match="switched off"):
        run_pipeline(workspace, source, off)
    with pytest.raises(DataError, match="no dataset"):
        run_pipeline(workspace, "missing/v0001", "ja")
    assert [v.version for v in workspace_versions(workspace, "tiny")] == ["v0001"]
    dry = run_pipeline(workspace, "sample-qa", "ja", dry_run=True)
    assert dry.version is None and dry.report["rows_in"] == 451


def workspace_versions(ws, name):
    from studio.data.registry import list_datasets

    return [v for v in list_datasets(ws) if v.name == name]


# --- the bundled corpus: precision and recall --------------------------------------------


def _junk_threads() -> dict[str, bool] | None:
    """Which BBS threads the generator made as junk (the labels only say `bbs`): rebuild the
    corpus with its own seed and read the flag from its first random draw. None when the
    rebuilt corpus is not the bundled one."""
    sys.path.insert(0, str(ASSETS_DIR))
    try:
        import build_sample_data as builder
    finally:
        sys.path.remove(str(ASSETS_DIR))
    original, flags = builder.bbs_thread, {}

    def spy(rng, topic):
        state = rng.getstate()
        junk = rng.random() < 0.35  # bbs_thread's first draw
        rng.setstate(state)
        text, url = original(rng, topic)
        flags[text] = junk
        return text, url

    builder.bbs_thread = spy
    try:
        corpus, _, _ = builder.build_corpus()
    finally:
        builder.bbs_thread = original
    bundled = [d["text"] for d in read_jsonl(SAMPLE_DATA_DIR / "corpus.jsonl")]
    if [d["text"] for d in corpus] != bundled:
        return None
    return flags


def corpus_scores(pipeline_name: str, junk: dict[str, bool]) -> dict:
    docs = read_jsonl(SAMPLE_DATA_DIR / "corpus.jsonl")
    labels = read_jsonl(SAMPLE_DATA_DIR / "corpus_labels.jsonl")
    cleaner = Cleaner(resolve_pipeline(pipeline_name))
    per_type: dict[str, list[int]] = {}
    tp = fp = fn = 0
    clean_kept = clean_total = en_kept = en_total = 0
    pii_kept = pii_masked = 0
    for doc, label in zip(docs, labels, strict=True):
        drop, text = cleaner.clean_text(doc["text"])
        noise = set(label["noise"])
        target = bool(noise & CLEANING_NOISE) or (noise == {"bbs"} and junk[doc["text"]])
        for kind in noise or {"clean"}:
            if kind == "bbs":
                kind = "bbs_junk" if junk[doc["text"]] else "bbs_informative"
            hit = per_type.setdefault(kind, [0, 0])
            hit[0] += drop >= 0
            hit[1] += 1
        tp += target and drop >= 0
        fn += target and drop < 0
        fp += (not target) and drop >= 0
        if not noise:
            clean_total += 1
            clean_kept += drop < 0
            if doc["text"].isascii():
                en_total += 1
                en_kept += drop < 0
        if noise == {"pii"}:
            pii_kept += drop < 0
            masked = "[EMAIL]" in text or "[PHONE]" in text
            pii_masked += drop < 0 and masked and "@" not in text
    return {
        "recall": tp / (tp + fn),
        "precision": tp / (tp + fp),
        "clean_kept": clean_kept / clean_total,
        "english_clean_kept": en_kept / en_total,
        "pii_kept": pii_kept,
        "pii_masked": pii_masked,
        "dropped_by_type": {k: f"{a}/{b}" for k, (a, b) in sorted(per_type.items())},
    }


@pytest.mark.parametrize("name", ["ja", "mixed"])
def test_bundled_corpus_precision_recall(name):
    junk = _junk_threads()
    if junk is None:
        pytest.skip("assets/build_sample_data.py no longer rebuilds the bundled corpus")
    scores = corpus_scores(name, junk)
    print(name, json.dumps(scores, ensure_ascii=False))
    assert scores["recall"] >= 0.85, scores
    assert scores["precision"] >= 0.9, scores
    assert scores["clean_kept"] >= 0.95, scores
    assert scores["english_clean_kept"] >= 0.95, scores  # English pages are not all dropped
    assert scores["pii_kept"] == 55 and scores["pii_masked"] == 55, scores
    for kind in CLEANING_NOISE:
        dropped, total = map(int, scores["dropped_by_type"][kind].split("/"))
        assert dropped >= 0.8 * total, (kind, scores)


# --- CLI ---------------------------------------------------------------------------------


def cli(capsys, *argv) -> tuple[int, dict]:
    code = main(list(argv) + ["--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_cli_clean(workspace, capsys, tmp_path):
    ws = str(workspace.root)
    code, out = cli(capsys, "data", "clean", "sample-corpus", "--workspace", ws)
    assert code == 0 and out["ok"] and out["version"] == "sample-corpus/v0002"
    assert out["rows_in"] == 2240 and out["rows_out"] < 2240 and out["num_proc"] == 1
    assert out["manifest"]["parent"] == "sample-corpus/v0001"
    # the next verb takes the version it reported; a YAML file works like a preset
    path = save_pipeline(preset("mixed"), tmp_path / "mine.yaml")
    code, again = cli(
        capsys, "data", "clean", out["version"], "--pipeline", str(path), "--workspace", ws
    )
    assert code == 0 and again["version"] == "sample-corpus/v0003"
    assert again["rows_in"] == out["rows_out"] and again["pipeline"] == "mixed"
    code, listing = cli(capsys, "data", "pipelines", "--filters", "--workspace", ws)
    assert code == 0 and {p["name"] for p in listing["presets"]} >= {"ja", "en", "mixed"}
    assert {f["name"] for f in listing["filters"]} == set(FILTERS)
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps:\n  - filter: nope\n", encoding="utf-8")
    code, err = cli(
        capsys, "data", "clean", "sample-corpus", "--pipeline", str(bad), "--workspace", ws
    )
    assert code == 1 and "bad.yaml: step 1: unknown filter 'nope'" in err["error"]["message"]
    sjis = tmp_path / "ng.txt"
    sjis.write_bytes("無修正\n".encode("cp932"))
    bad.write_text(f"steps:\n  - filter: ng_words\n    words_file: {sjis}\n", encoding="utf-8")
    code, err = cli(
        capsys, "data", "clean", "sample-corpus", "--pipeline", str(bad), "--workspace", ws
    )
    assert code == 1 and "ng.txt is not UTF-8" in err["error"]["message"]
    code, err = cli(capsys, "data", "clean", "nothing-here", "--workspace", ws)
    assert code == 1 and "no dataset" in err["error"]["message"]
    assert not Path(ws, "datasets", "sample-corpus", "v0004").exists()


def test_a_clean_that_would_remove_most_rows_saves_only_when_confirmed(workspace, capsys):
    """The issue's case: a 12-row QA set through the ja preset (made for web corpora) loses
    11 rows to the minimum length. Nothing is saved until the user confirms."""
    from studio.data.clean import MostRemoved
    from studio.data.registry import list_datasets

    qa = [
        {"id": str(i), "prompt": f"質問{i}は？", "completion": f"答え{i}です。"} for i in range(11)
    ]
    qa.append({"id": "long", "prompt": "富士山について教えて。", "completion": (
        "富士山は静岡県と山梨県にまたがる日本一高い山で、標高は3776メートルです。夏には多くの"
        "登山者が山頂を目指し、ご来光を見るために夜から登る人もいます。")})  # fmt: skip
    version = _small_version(workspace, qa, fmt="prompt_completion", name="qa")
    with pytest.raises(MostRemoved, match=r"would remove 11 of 12 rows \(92%\), most of them by"):
        run_pipeline(workspace, version.spec, "ja")
    assert [v.spec for v in list_datasets(workspace) if v.name == "qa"] == [version.spec]
    assert run_pipeline(workspace, version.spec, "ja", dry_run=True).version is None
    saved = run_pipeline(workspace, version.spec, "ja", allow_most_removed=True)
    assert saved.version is not None and saved.report["rows_out"] == 1
    ws = ["--workspace", str(workspace.root), "--json"]
    assert main(["data", "clean", version.spec, *ws]) == 1
    assert "--allow-most-removed" in json.loads(capsys.readouterr().out)["error"]["message"]
    assert main(["data", "clean", version.spec, "--allow-most-removed", *ws]) == 0
