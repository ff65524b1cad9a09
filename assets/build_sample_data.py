#!/usr/bin/env python3
"""Build the bundled sample data in ``assets/data/`` (stdlib only, deterministic).

    python assets/build_sample_data.py [--out DIR] [--check]

Writes, from the hand-written fact table and templates in ``assets/sample_data_src/``:

* ``corpus.jsonl``        web-like documents (about 75 % Japanese, 20 % English, 5 % mixed) for
                          continued pre-training and for the data-cleaning demo;
* ``corpus_labels.jsonl`` the ground truth of the noise planted in the corpus (one line per doc);
* ``chat_ojousama.jsonl`` an SFT chat set (OpenAI messages) with a polite お嬢様 persona;
* ``qa_pc.jsonl``         prompt/completion QA in plain です/ます style;
* ``eval_qa.jsonl`` + ``eval_qa_shots.jsonl``  50 short-answer exact-match items + 3 shots;
* ``eval_rank.jsonl``     50 candidate-ranking items (``{word}`` slot, 5-10 candidates);
* ``README.md``           schemas, counts and noise statistics.

All files draw on one fact table, so the QA and evaluation sets are answerable from the corpus.

Why noise is planted: about a quarter of the corpus is deliberately dirty in the ways real
scraped Japanese web text is dirty (shop/ad boilerplate, navigation menus, repeated lines, exact
and near duplicates, tiny fragments, mojibake made with real wrong codecs, keyword spam, BBS
posts, e-mail addresses and phone numbers, truncated snippet lists). The studio's cleaning
filters are demonstrated and *measured* on it: ``corpus_labels.jsonl`` says which documents carry
which noise, so a filter's precision and recall can be computed.

The same seed always gives byte-identical files; no wall clock, no hash-order dependence. After
writing, the script re-reads the files and validates them (``--check`` does only that).
"""

from __future__ import annotations

import argparse
import datetime as dt
import difflib
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path
from random import Random

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from sample_data_src import corpus_text as CT  # noqa: E402
from sample_data_src import eval_items as EV  # noqa: E402
from sample_data_src import noise_text as NT  # noqa: E402
from sample_data_src import persona as PE  # noqa: E402
from sample_data_src.facts import FACTS, TOPICS  # noqa: E402

SEED = 20240607
DEFAULT_OUT = HERE / "data"

N_DOCS = 2240
SHARE_EN, SHARE_MIXED = 0.20, 0.05
CLEAN_MIN, CLEAN_MAX = 150, 1200

NOISE_TYPES = [
    "ad_boilerplate",
    "navigation",
    "repeated_lines",
    "exact_duplicate",
    "near_duplicate",
    "short_fragment",
    "mojibake",
    "keyword_spam",
    "bbs",
    "pii",
    "ellipsis_lines",
]
# how many documents of each kind; "ad+nav" documents carry both labels
NOISE_PLAN = {
    "ad_boilerplate": 48,
    "navigation": 48,
    "ad+nav": 15,
    "repeated_lines": 46,
    "exact_duplicate": 62,
    "near_duplicate": 62,
    "short_fragment": 50,
    "mojibake": 50,
    "keyword_spam": 46,
    "bbs": 64,
    "pii": 55,
    "ellipsis_lines": 46,
}
# share of English documents per noise kind (the rest are Japanese)
NOISE_EN = {
    "ad_boilerplate": 0.25,
    "navigation": 0.2,
    "ad+nav": 0.2,
    "repeated_lines": 0.2,
    "short_fragment": 0.3,
    "keyword_spam": 0.25,
    "pii": 0.2,
    "ellipsis_lines": 0.2,
}

N_CHAT = 330
N_CHAT_MULTI = 100

# ---------------------------------------------------------------------------- markup
SHORT = {
    "だ": ("です", "だ", "である"),
    "だった": ("でした", "だった", "であった"),
    "た": ("ました", "た"),  # only after a 連用形 that takes ます directly (開業し{た}, 点て{た})
    "いる": ("います", "いる"),
    "いた": ("いました", "いた"),
    "ある": ("あります", "ある"),
    "あった": ("ありました", "あった"),
    "する": ("します", "する"),
    "した": ("しました", "した"),
    "れる": ("れます", "れる"),
    "れた": ("れました", "れた"),
    "なる": ("なります", "なる"),
    "なった": ("なりました", "なった"),
    "できる": ("できます", "できる"),
    "い": ("いです", "い"),
    "ない": ("ありません", "ない"),
    "きた": ("きました", "きた"),
    "みた": ("みました", "みた"),
    "いく": ("いきます", "いく"),
    "くる": ("きます", "くる"),
}
TOKEN = re.compile(r"\{([^{}]*)\}")
STYLES = ("desu", "da", "dearu")


def render(text: str, style: str) -> str:
    """Render marked-up Japanese in one style: desu (です/ます), da (だ), dearu (である)."""

    def rep(m: re.Match) -> str:
        body = m.group(1)
        if "|" in body:
            polite, plain = body.split("|")
            return polite if style == "desu" else plain
        forms = SHORT[body]
        if style == "desu":
            return forms[0]
        if style == "dearu" and len(forms) > 2:
            return forms[2]
        return forms[1]

    return TOKEN.sub(rep, text)


def group_of(fact: dict) -> str:
    return CT.FACT_GROUP_ALIAS.get((fact["topic"], fact["group"]), fact["group"])


FACTS_BY_GROUP: dict[str, list[dict]] = {}
for _f in FACTS:
    FACTS_BY_GROUP.setdefault(group_of(_f), []).append(_f)
GROUPS_BY_TOPIC: dict[str, list[str]] = {}
for _g, _spec in CT.GROUPS.items():
    GROUPS_BY_TOPIC.setdefault(_spec["topic"], []).append(_g)
TOPIC_KEYS = list(TOPICS)
HOWTO_BY_TOPIC: dict[str, list[dict]] = {}
for _h in CT.HOWTO:
    HOWTO_BY_TOPIC.setdefault(_h["topic"], []).append(_h)
EN_FACT_SET = {f["en"] for f in FACTS}
HOWTO_EN_BY_TOPIC: dict[str, list[dict]] = {}
for _h in CT.HOWTO_EN:
    HOWTO_EN_BY_TOPIC.setdefault(_h["topic"], []).append(_h)

WEEKDAYS = "月火水木金土日"
CLEAN_HOSTS = [
    "blog.example.jp",
    "diary.example.jp",
    "example.jp",
    "www.example.jp",
    "memo.example.jp",
]
TITLE_FMT = ["{t}", "■{t}", "【{t}】", "## {t}", "「{t}」"]
TITLE_FMT_EN = ["{t}", "# {t}", "{t} - notes", "{t}"]
DATE_FMT = [
    "{y}年{m}月{d}日",
    "{y}/{m:02d}/{d:02d}",
    "{y}.{m}.{d}",
    "{y}年{m}月{d}日（{wd}）",
    "投稿日：{y}年{m}月{d}日",
]
# fmt: off
LOWER_FIRST = {
    "The", "In", "On", "A", "An", "It", "Its", "For", "Since", "Running", "Using", "Growing",
    "When", "One", "Cats", "Onions", "Chocolate", "Sunflowers", "Morning", "Autumn", "Typhoons",
    "Green", "Tempura", "Sushi", "Natto", "Soba", "Dashi", "Miso", "Umami", "Urushi", "Washi",
    "Kokeshi", "Matcha", "Sencha", "Hojicha", "Gyokuro", "Awase", "Tulip", "Hydrangea", "Basil",
    "Cherry", "Goldfish", "Kintsugi", "Umeboshi", "Ozoni", "Washoku", "Scratching", "Dog",
    "Indoor", "Python", "Polaris", "Subaru",
}
# fmt: on
KEEP_CASE = {"Python", "Polaris", "Subaru"}


# ---------------------------------------------------------------------------- small helpers
def jdate(rng: Random) -> dt.date:
    return dt.date(2015, 1, 1) + dt.timedelta(days=rng.randrange(3650))


def fmt_date(rng: Random, d: dt.date) -> str:
    return rng.choice(DATE_FMT).format(y=d.year, m=d.month, d=d.day, wd=WEEKDAYS[d.weekday()])


def paragraphs(rng: Random, sents: list[str], lo: int = 2, hi: int = 4, sep: str = "") -> list[str]:
    out, i = [], 0
    while i < len(sents):
        k = rng.randint(lo, hi)
        out.append(sep.join(sents[i : i + k]))
        i += k
    return out


def en_connect(conn: str, s: str) -> str:
    first = s.split(" ", 1)[0]
    if first in LOWER_FIRST and first not in KEEP_CASE:
        s = s[0].lower() + s[1:]
    return conn + s


def is_ja_char(c: str) -> bool:
    o = ord(c)
    return 0x3040 <= o <= 0x30FF or 0x4E00 <= o <= 0x9FFF or 0xFF66 <= o <= 0xFF9F


def lang_of(text: str) -> str:
    """Heuristic language of a text: ja / en / mixed (by share of Japanese letters)."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return "other"
    share = sum(is_ja_char(c) for c in letters) / len(letters)
    if share >= 0.85:
        return "ja"
    if share <= 0.05:
        return "en"
    return "mixed"


def dumps(obj: dict) -> str:
    s = json.dumps(obj, ensure_ascii=False)
    # C1 controls and line/paragraph separators (from mojibake) break naive line splitters
    return re.sub(r"[\x80-\x9f\u2028\u2029]", lambda m: f"\\u{ord(m.group()):04x}", s)


def write_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(dumps(row) + "\n")


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


# ---------------------------------------------------------------------------- clean documents
class Corpus:
    """Generates documents; keeps every text and URL unique."""

    def __init__(self, seed: int):
        self.rng = Random(seed)
        self.serial = 0
        self.texts: set[str] = set()
        self.urls: set[str] = set()
        self.last = ("geo", "mountains")  # topic and group of the last generated document

    # ---- bookkeeping
    def url(self, base: str) -> str:
        u, k = base, 2
        while u in self.urls:
            u, k = f"{base}-{k}", k + 1
        self.urls.add(u)
        return u

    def next_serial(self) -> int:
        self.serial += 1
        return self.serial

    def pick_topic_group(self) -> tuple[str, str]:
        rng = self.rng
        topic = rng.choice(TOPIC_KEYS)
        groups = GROUPS_BY_TOPIC[topic]
        weights = [len(FACTS_BY_GROUP.get(g, [])) + len(CT.GROUPS[g]["color"]) for g in groups]
        self.last = (topic, rng.choices(groups, weights)[0])
        return self.last

    # ---- Japanese sentence pools
    def ja_pool(self, topic: str, group: str, style: str, n_rest: int | None = None) -> list[str]:
        """Sentences of the group (shuffled), then up to ``n_rest`` of the rest of the topic."""
        rng = self.rng
        own = [rng.choice(f["ja"]) for f in FACTS_BY_GROUP.get(group, [])]
        own += CT.GROUPS[group]["color"]
        rng.shuffle(own)
        rest = []
        for g in GROUPS_BY_TOPIC[topic]:
            if g != group:
                rest += [rng.choice(f["ja"]) for f in FACTS_BY_GROUP.get(g, [])]
                rest += CT.GROUPS[g]["color"]
        rng.shuffle(rest)
        if n_rest is not None:
            rest = rest[:n_rest]
        return [render(s, style) for s in own + rest]

    def new_doc(self) -> None:
        self.doc_conns: set[str] = set()
        self.doc_date: dt.date | None = None

    def conn(self, conns: list[str]) -> str:
        """A connective not used yet in this document ("" when all are used)."""
        free = [c for c in conns if c not in self.doc_conns]
        if not free:
            return ""
        c = self.rng.choice(free)
        self.doc_conns.add(c)
        return c

    def take(self, pool: list[str], target: int, conns: list[str], p_conn: float) -> list[str]:
        out, total = [], 0
        while pool and total < target:
            s = pool.pop(0)
            if out and conns and self.rng.random() < p_conn:
                s = self.conn(conns) + s
            if total + len(s) > CLEAN_MAX - 250:
                break
            out.append(s)
            total += len(s)
        return out

    def target_len(self) -> int:
        r = self.rng.random()
        if r < 0.3:
            return self.rng.randint(150, 300)
        if r < 0.78:
            return self.rng.randint(300, 600)
        return self.rng.randint(600, 900)

    def title(self, group: str, en: bool = False) -> str:
        spec = CT.GROUPS[group]
        if en:
            return self.rng.choice(TITLE_FMT_EN).format(t=self.rng.choice(spec["title_en"]))
        return self.rng.choice(TITLE_FMT).format(t=self.rng.choice(spec["title"]))

    # ---- Japanese document kinds
    def ja_encyclopedia(self, topic: str, group: str) -> str:
        rng = self.rng
        style = "dearu" if rng.random() < 0.75 else "desu"
        pool = self.ja_pool(topic, group, style, rng.randint(0, 3))
        target = self.target_len()
        blocks = []
        sections = target > 550 and rng.random() < 0.5
        if sections and rng.random() < 0.5:
            blocks.append(rng.choice(TITLE_FMT).format(t=TOPICS[topic]["ja"]))
        elif not sections and rng.random() < 0.6:
            blocks.append(self.title(group))
        if sections:
            # sections with headings: this group, then one or two other groups of the topic
            others = [g for g in GROUPS_BY_TOPIC[topic] if g != group]
            rng.shuffle(others)
            fmt = rng.choice(["■{t}", "## {t}", "【{t}】", "◆{t}"])
            for g in [group] + others[: rng.randint(1, 2)]:
                sec = self.ja_pool(topic, g, style)[: rng.randint(2, 4)]
                blocks.append(fmt.format(t=CT.NAME[g]))
                blocks.append("".join(sec))
        else:
            sents = self.take(pool, target, CT.ENC_CONN, 0.25)
            blocks += paragraphs(rng, sents, 2, 4)
        return self.finish(blocks, pool + self.ja_pool(topic, group, style))

    def ja_blog(self, topic: str, group: str) -> str:
        rng = self.rng
        style = "da" if rng.random() < 0.45 else "desu"
        spec = CT.GROUPS[group]
        blocks = []
        self.doc_date = jdate(rng)
        if rng.random() < 0.4:
            blocks.append(fmt_date(rng, self.doc_date))
        if rng.random() < 0.45:
            blocks.append(self.title(group))
        head = []
        if rng.random() < 0.3:
            head.append(rng.choice(CT.GENERIC_OPEN[style]))
        head.append(render(rng.choice(spec["open"]), style))
        pool = self.ja_pool(topic, group, style, rng.randint(1, 4))
        body = self.take(pool, self.target_len(), CT.BLOG_CONN[style], 0.3)
        tail = []
        if rng.random() < 0.7:
            tail.append(render(rng.choice(CT.FEEL[topic]), style))
        r = rng.random()
        if r < 0.4:
            tail.append(render(rng.choice(CT.CLOSE[topic]), style))
        elif r < 0.7:
            tail.append(rng.choice(CT.GENERIC_CLOSE[style]))
        sents = head + body
        if rng.random() < 0.5:
            blocks += paragraphs(rng, sents, 2, 4)
        else:
            blocks.append("".join(head))
            blocks += paragraphs(rng, body, 2, 3)
        if tail:
            blocks.append("".join(tail))
        return self.finish(blocks, pool + self.ja_pool(topic, group, style))

    def ja_howto(self, topic: str, group: str) -> str:
        rng = self.rng
        style = "desu" if rng.random() < 0.75 else "da"
        cands = [h for h in HOWTO_BY_TOPIC[topic] if h["group"] == group] or HOWTO_BY_TOPIC[topic]
        h = rng.choice(cands)
        blocks = [rng.choice(TITLE_FMT).format(t=rng.choice(h["title"]))]
        intro = []
        if rng.random() < 0.3:
            intro.append(render(rng.choice(CT.GROUPS[h["group"]]["open"]), style))
        intro.append(render(rng.choice(h["intro"]), style))
        blocks.append("".join(intro))
        if h["items"] and rng.random() < 0.75:
            head = rng.choice(["【材料】", "用意するもの", "■材料", "必要なもの："])
            if topic not in ("food",) and head in ("【材料】", "■材料"):
                head = "用意するもの"
            blocks.append(head + "\n" + "\n".join("・" + x for x in h["items"]))
        mark = rng.choice(CT.STEP_MARKS)
        steps = []
        for i, s in enumerate(h["steps"], 1):
            m = mark.format(n=i, c=CT.CIRCLED[i - 1]) if "{" in mark else mark
            steps.append(m + render(s, style))
        if rng.random() < 0.5:
            heads = ["手順", "やり方", "【手順】"] + (
                ["作り方", "【作り方】"] if topic == "food" else []
            )
            blocks.append(rng.choice(heads) + "\n" + "\n".join(steps))
        else:
            blocks.append("\n".join(steps))
        tips = [render(t, style) for t in h["tips"]]
        tip_head = rng.choice(["ポイント：", "コツ：", "※", ""])
        blocks.append(tip_head + "".join(tips))
        pool = self.ja_pool(topic, h["group"], style, 1)
        if rng.random() < 0.5:
            extra = self.take(pool, rng.randint(40, 200), [], 0.0)
            if extra:
                blocks.append(CT.BLOG_CONN[style][0] + "".join(extra))
        if rng.random() < 0.4:
            blocks.append(render(rng.choice(CT.CLOSE[topic]), style))
        return self.finish(blocks, pool + self.ja_pool(topic, h["group"], style))

    def ja_faq(self, topic: str, group: str) -> str:
        rng = self.rng
        t = rng.choice([CT.NAME[group], TOPICS[topic]["ja"]])
        blocks = [rng.choice(CT.FAQ_HEAD).format(t=t)]
        facts = list(FACTS_BY_GROUP.get(group, []))
        rng.shuffle(facts)
        others = [f for f in FACTS if f["topic"] == topic and f not in facts]
        rng.shuffle(others)
        qa_fmt = rng.choice(
            [("Q. ", "A. "), ("Q：", "A："), ("【Q】", "【A】"), ("質問：", "回答：")]
        )
        total = 0
        target = self.target_len()
        for f in facts + others:
            qa = f"{qa_fmt[0]}{rng.choice(f['q'])}\n{qa_fmt[1]}{render(f['ja'][0], 'desu')}"
            blocks.append(qa)
            total += len(qa)
            if total > target or len(blocks) > 6:
                break
        return self.finish(blocks, [])

    def ja_list(self, topic: str, group: str) -> str:
        rng = self.rng
        style = rng.choice(STYLES)
        pool = self.ja_pool(topic, group, style, rng.randint(0, 3))
        n = rng.randint(3, 7)
        items = pool[:n]
        del pool[:n]
        t = rng.choice([TOPICS[topic]["ja"], CT.NAME[group]])
        blocks = [rng.choice(CT.LIST_HEAD).format(t=t, n=len(items))]
        mark = rng.choice(["・", "{i}. ", "■", "- ", "{i}）"])
        blocks.append("\n".join(mark.format(i=i) + s for i, s in enumerate(items, 1)))
        if CT.LIST_CLOSE[style] and rng.random() < 0.6:
            blocks.append(rng.choice(CT.LIST_CLOSE[style]).format(t=t))
        return self.finish(blocks, pool + self.ja_pool(topic, group, style))

    def ja_note(self, topic: str, group: str) -> str:
        rng = self.rng
        style = "da" if rng.random() < 0.6 else "desu"
        self.doc_date = jdate(rng)
        pool = self.ja_pool(topic, group, style, 1)
        sents = [render(rng.choice(CT.GROUPS[group]["open"]), style)]
        sents += self.take(pool, rng.randint(80, 180), CT.BLOG_CONN[style], 0.4)
        sents.append(render(rng.choice(CT.FEEL[topic]), style))
        return self.finish(["".join(sents)], pool + self.ja_pool(topic, group, style))

    def finish(
        self, blocks: list[str], pool: list[str], sep: str | None = None, joiner: str = ""
    ) -> str:
        """Join blocks; top up short documents and trim long ones to CLEAN_MIN..CLEAN_MAX."""
        sep = sep if sep is not None else self.rng.choice(["\n", "\n\n", "\n\n"])
        text = sep.join(b for b in blocks if b)
        while len(text) < CLEAN_MIN and pool:
            s = pool.pop(0)
            if s not in text:
                text += (sep if len(text) < CLEAN_MIN - 60 or not joiner else joiner) + s
        while len(text) > CLEAN_MAX and len(blocks) > 1:
            blocks = blocks[:-1]
            text = sep.join(b for b in blocks if b)
        return text

    def ja_doc(self, topic: str | None = None, group: str | None = None) -> tuple[str, str]:
        self.new_doc()
        if topic is None or group is None:
            topic, group = self.pick_topic_group()
        self.last = (topic, group)
        kinds = ["encyclopedia", "blog", "howto", "faq", "list", "note"]
        weights = [0.28, 0.34, 0.12, 0.08, 0.10, 0.08]
        kind = self.rng.choices(kinds, weights)[0]
        if kind == "howto" and topic not in HOWTO_BY_TOPIC:
            kind = "blog"
        return getattr(self, "ja_" + kind)(topic, group), kind

    # ---- English documents
    def en_pool(self, topic: str, group: str, n_rest: int | None = None) -> list[str]:
        rng = self.rng
        own = [f["en"] for f in FACTS_BY_GROUP.get(group, [])] + CT.GROUPS[group]["color_en"]
        rng.shuffle(own)
        rest = []
        for g in GROUPS_BY_TOPIC[topic]:
            if g != group:
                rest += [f["en"] for f in FACTS_BY_GROUP.get(g, [])] + CT.GROUPS[g]["color_en"]
        rng.shuffle(rest)
        return own + (rest if n_rest is None else rest[:n_rest])

    def en_take(self, pool: list[str], target: int, p_conn: float) -> list[str]:
        out, total = [], 0
        while pool and total < target:
            s = pool.pop(0)
            # connectives only before statements of fact, never before advice ("Use ...")
            if out and s in EN_FACT_SET and not s.startswith("Use ") and self.rng.random() < p_conn:
                c = self.conn(CT.EN_CONN)
                s = en_connect(c, s) if c else s
            out.append(s)
            total += len(s) + 1
        return out

    def en_doc(self) -> tuple[str, str]:
        rng = self.rng
        self.new_doc()
        topic, group = self.pick_topic_group()
        spec = CT.GROUPS[group]
        kind = rng.choices(
            ["article", "blog", "howto", "faq", "list"], [0.3, 0.35, 0.12, 0.1, 0.13]
        )[0]
        if kind == "howto" and topic not in HOWTO_EN_BY_TOPIC:
            kind = "blog"
        pool = self.en_pool(topic, group, rng.randint(0, 3))
        target = self.target_len() + 150
        blocks = []
        if kind == "article":
            if rng.random() < 0.6:
                blocks.append(self.title(group, en=True))
            blocks += paragraphs(rng, self.en_take(pool, target, 0.15), 2, 4, " ")
        elif kind == "blog":
            if rng.random() < 0.4:
                blocks.append(self.title(group, en=True))
            head = ([rng.choice(CT.EN_OPEN)] if rng.random() < 0.4 else []) + [
                rng.choice(spec["open_en"])
            ]
            blocks.append(" ".join(head))
            blocks += paragraphs(rng, self.en_take(pool, target, 0.25), 2, 3, " ")
            tail = [rng.choice(CT.EN_FEEL[topic])]
            if rng.random() < 0.6:
                tail.append(rng.choice(CT.EN_CLOSE))
            blocks.append(" ".join(tail))
        elif kind == "howto":
            h = rng.choice(HOWTO_EN_BY_TOPIC[topic])
            blocks.append(rng.choice(TITLE_FMT_EN).format(t=h["title"]))
            if h["items"]:
                blocks.append("You will need:\n" + "\n".join("- " + x for x in h["items"]))
            numbered = rng.random() < 0.7
            steps = [(f"{i}. " if numbered else "- ") + s for i, s in enumerate(h["steps"], 1)]
            blocks.append("\n".join(steps))
            blocks.append("Tip: " + h["tip"])
            if rng.random() < 0.5:
                blocks.append(" ".join(self.en_take(pool, rng.randint(60, 200), 0.0)))
        elif kind == "faq":
            blocks.append(rng.choice(CT.EN_FAQ_HEAD).format(t=TOPICS[topic]["en"]))
            facts = [f for f in FACTS if f["topic"] == topic and f["q_en"]]
            rng.shuffle(facts)
            own = [f for f in facts if group_of(f) == group]
            facts = own + [f for f in facts if f not in own]
            for f in facts[: rng.randint(2, 5)]:
                blocks.append(f"Q: {f['q_en']}\nA: {f['en']}")
        else:
            items = self.en_take(pool, rng.randint(250, 600), 0.0)
            t = TOPICS[topic]["en"]
            head = rng.choice(CT.EN_LIST_HEAD).format(t=t, n=len(items))
            blocks.append(head[0].upper() + head[1:])
            blocks.append("\n".join("- " + s for s in items))
        return self.finish(blocks, pool + self.en_pool(topic, group), joiner=" "), "en_" + kind

    # ---- mixed Japanese / English documents
    def mixed_doc(self) -> tuple[str, str]:
        rng = self.rng
        self.new_doc()
        topic, group = self.pick_topic_group()
        kind = rng.choices(["bilingual", "tech", "glossary", "sprinkle"], [0.4, 0.2, 0.2, 0.2])[0]
        if kind == "tech" and topic != "pc":
            topic, group = "pc", rng.choice(["python", "git", "basics"])
            self.last = (topic, group)
        blocks = []
        if kind == "bilingual":
            spec = CT.GROUPS[group]
            blocks.append(f"{spec['title'][0]} / {spec['title_en'][0]}")
            facts = list(FACTS_BY_GROUP.get(group, []))
            rng.shuffle(facts)
            facts = facts[: rng.randint(2, 4)]
            style = rng.choice(["desu", "dearu"])
            ja = "".join(render(f["ja"][0], style) for f in facts)
            en = " ".join(f["en"] for f in facts)
            labels = rng.choice([("【日本語】", "【English】"), ("日本語：", "English:"), ("", "")])
            blocks.append(labels[0] + ("\n" if labels[0] else "") + ja)
            blocks.append(labels[1] + ("\n" if labels[1] else "") + en)
        elif kind == "tech":
            style = rng.choice(["da", "desu"])
            blocks.append(
                rng.choice(
                    [
                        "Gitメモ",
                        "コマンドメモ",
                        "作業ログ",
                        "Python & Git 備忘録",
                        "よく使うコマンド",
                    ]
                )
            )
            notes = rng.sample(CT.CMD_NOTES, rng.randint(4, 7))
            blocks.append("\n".join(f"$ {c}\n→ {d}" for c, d in notes))
            if rng.random() < 0.6:
                code, expl = rng.choice(CT.CODE_SNIPPETS)
                blocks.append("```python\n" + code + "\n```\n" + expl)
            pool = self.ja_pool(topic, group, style, 0)
            blocks.append("".join(pool[:2]))
        elif kind == "glossary":
            terms = {t[0]: t for t in CT.GLOSSARY}
            keys = list(CT.GLOSSARY_TOPIC[topic])
            rng.shuffle(keys)
            blocks.append(
                rng.choice(
                    [
                        "用語メモ（日本語 → English）",
                        "Japanese-English glossary / 用語集",
                        "英語で言うと？",
                    ]
                )
            )
            lines = []
            fmt = rng.choice(["・{a}（{b}）: {c}", "{a} / {b} … {c}", "- {a} ({b}): {c}"])
            for k in keys:
                ja, romaji, gloss = terms[k]
                lines.append(fmt.format(a=ja, b=romaji, c=gloss))
            blocks.append("\n".join(lines))
            pool = self.ja_pool(topic, group, "desu", 0)
            blocks.append("".join(pool[:2]))
        else:
            style = "da" if rng.random() < 0.5 else "desu"
            head, tags = CT.EN_SPRINKLE[topic]
            blocks.append(head)
            pool = self.ja_pool(topic, group, style, 1)
            sents = [render(rng.choice(CT.GROUPS[group]["open"]), style)] + pool[:3]
            blocks.append("".join(sents))
            blocks.append(" ".join(tags[: rng.randint(2, 3)]))
            pool = pool[3:]
            return self.finish(blocks, pool, sep="\n"), "mixed_" + kind
        return self.finish(blocks, self.ja_pool(topic, group, "desu")), "mixed_" + kind

    # ---- URLs
    def clean_url(self, kind: str, topic: str) -> str:
        rng = self.rng
        n = self.next_serial()
        slug = TOPICS[topic]["en"].lower().replace(" ", "-")
        if kind in ("blog", "note", "mixed_sprinkle", "en_blog"):
            d = self.doc_date or jdate(rng)
            host = rng.choice(
                CLEAN_HOSTS
                if not kind.startswith("en")
                else ["www.example.com", "blog.example.com"]
            )
            base = f"https://{host}/entry/{d.year}/{d.month:02d}/{d.day:02d}/{n:05d}"
        elif kind in ("encyclopedia", "list"):
            base = f"https://wiki.example.org/articles/{slug}/{n}"
        elif kind in ("howto", "en_howto"):
            base = f"https://howto.example.com/{slug}/{n}"
        elif kind in ("faq", "en_faq"):
            base = f"https://example.jp/faq/{slug}-{n}"
        elif kind.startswith("en_"):
            base = f"https://www.example.com/{slug}/{n}"
        else:
            base = f"https://notes.example.org/{slug}/{n}"
        return self.url(base)


# ---------------------------------------------------------------------------- noise
def ad_block(rng: Random, topic: str, en: bool) -> list[str]:
    if en:
        lines = rng.sample(NT.AD_LINES_EN, rng.randint(2, 4))
        return [
            ln.format(
                product=rng.choice(NT.PRODUCTS_EN),
                usd=f"{rng.randint(9, 89)}.99",
                pct=rng.choice([10, 20, 30, 50]),
            )
            for ln in lines
        ]
    lines = rng.sample(NT.AD_LINES, rng.randint(2, 5))
    out = []
    for ln in lines:
        price = rng.choice(NT.PRICES)
        p = rng.choice([f"¥{price:,}", f"{price:,}円", f"{price:,}円（税込）"])
        out.append(
            ln.format(
                product=rng.choice(NT.PRODUCTS[topic]), price=p, pct=rng.choice([10, 20, 30, 50])
            )
        )
    return out


def nav_lines(rng: Random, which: str, en: bool, title: str, topic: str, k: int) -> list[str]:
    pool = (
        (NT.NAV_HEAD_EN if which == "head" else NT.NAV_FOOT_EN)
        if en
        else (NT.NAV_HEAD if which == "head" else NT.NAV_FOOT)
    )
    site = rng.choice(NT.SITES_EN if en else NT.SITES)
    title2 = rng.choice(CT.GROUPS[rng.choice(GROUPS_BY_TOPIC[topic])]["title"])
    tags = "、".join(rng.sample(CT.GLOSSARY_TOPIC[topic], min(3, len(CT.GLOSSARY_TOPIC[topic]))))
    lines = rng.sample(pool, min(k, len(pool)))
    return [
        ln.format(
            cat=TOPICS[topic]["cat"],
            title=title,
            title2=title2,
            site=site,
            year=rng.randint(2015, 2024),
            tags=tags,
        )
        for ln in lines
    ]


def mojibake(rng: Random, text: str) -> tuple[str, str]:
    mode = rng.choices(
        ["cp1252", "utf8_as_sjis", "sjis_as_utf8", "latin1", "partial"], [0.26, 0.3, 0.14, 0.1, 0.2]
    )[0]

    def garble(s: str, m: str) -> str:
        if m == "cp1252":
            return s.encode("utf-8").decode("cp1252", errors="replace")
        if m == "latin1":
            return s.encode("utf-8").decode("latin-1")
        if m == "utf8_as_sjis":
            return s.encode("utf-8").decode("cp932", errors="replace")
        return s.encode("cp932", errors="replace").decode("utf-8", errors="replace")

    if mode != "partial":
        return garble(text, mode), mode
    parts = text.split("\n")
    idx = max(range(len(parts)), key=lambda i: len(parts[i]))
    parts[idx] = garble(parts[idx], rng.choice(["cp1252", "utf8_as_sjis"]))
    return "\n".join(parts), mode


NEAR_JA_SYN = [
    ("とても", "すごく"),
    ("たくさん", "多く"),
    ("ちなみに", "なお"),
    ("また、", "さらに、"),
    ("ですが、", "ですけれど、"),
]
NEAR_EN_SYN = [
    ("large", "big"),
    ("famous", "well known"),
    ("usually", "generally"),
    ("very", "really"),
    ("beautiful", "lovely"),
]
NEAR_JA_ADD = [
    "参考になれば幸いです。",
    "（追記）写真は後日載せます。",
    "※この記事は以前の投稿を加筆したものです。",
    "以上です。",
]
NEAR_EN_ADD = ["Update: photos coming soon.", "Thanks for reading!", "(Edited for clarity.)"]


def near_duplicate(rng: Random, text: str, en: bool) -> str:
    def op_punct(s: str) -> str:
        if en:
            idx = [m.start() for m in re.finditer(r"\. ", s)]
            if not idx:
                return s + "!"
            i = rng.choice(idx)
            return s[:i] + "! " + s[i + 2 :]
        src, dst = rng.choice([("、", "，"), ("。", "．"), ("。", "！"), ("、", " ")])
        idx = [m.start() for m in re.finditer(src, s)]
        for i in rng.sample(idx, min(len(idx), rng.randint(1, 3))):
            s = s[:i] + dst + s[i + 1 :]
        return s

    def op_drop(s: str) -> str:
        pat = r"(?<=[.!?]) " if en else r"(?<=。)"
        sents = [x for x in re.split(pat, s) if x]
        small = [i for i, x in enumerate(sents) if i and len(x) < 0.15 * len(s)]
        if len(sents) < 4 or not small:
            return s
        i = rng.choice(small)
        return ("" if not en else " ").join(sents[:i] + sents[i + 1 :])

    def op_add(s: str) -> str:
        extra = rng.choice(NEAR_EN_ADD if en else NEAR_JA_ADD)
        return (
            s + "\n" + extra if rng.random() < 0.7 else ("【再掲】" if not en else "[Repost] ") + s
        )

    def op_para(s: str) -> str:
        return s.replace("\n\n", "\n") if "\n\n" in s else s.replace("\n", "\n\n")

    def op_digits(s: str) -> str:
        m = re.search(r"[0-9]+", s)
        if not m or en:
            return s.replace("  ", " ") + " "
        full = m.group().translate(str.maketrans("0123456789", "０１２３４５６７８９"))
        return s[: m.start()] + full + s[m.end() :]

    def op_syn(s: str) -> str:
        pairs = NEAR_EN_SYN if en else NEAR_JA_SYN
        for a, b in rng.sample(pairs, len(pairs)):
            pat = rf"\b{a}\b" if en else re.escape(a)
            if re.search(pat, s):
                return re.sub(pat, b, s, count=1)
        return s

    ops = [op_punct, op_drop, op_add, op_para, op_digits, op_syn]
    out = text
    for op in rng.sample(ops, rng.randint(1, 3)):
        out = op(out)
    while out == text:
        out = op_add(out)
    return out


def keyword_spam(rng: Random, topic: str, en: bool) -> str:
    if en:
        main = rng.sample(NT.SPAM_EN_TOPIC, 2)
        words = main * 4 + NT.SPAM_EN
        title = (
            f"{main[0].upper()} {main[0]} {rng.choice(NT.SPAM_EN)} {main[1]} cheap cheap best price"
        )
    else:
        main = rng.sample(NT.SPAM_TOPIC[topic], min(2, len(NT.SPAM_TOPIC[topic])))
        words = main * 4 + NT.SPAM_COMMON
        title = f"【{rng.choice(['激安', '最安値', '送料無料'])}】{main[0]} {rng.choice(NT.SPAM_COMMON)} {main[-1]} 激安 通販【{rng.choice(NT.SPAM_COMMON)}】"
    sep = rng.choice([" ", "　", "｜", "、"] if not en else [" ", " | ", ", "])
    lines = [title]
    for _ in range(rng.randint(3, 8)):
        toks = [rng.choice(words) for _ in range(rng.randint(8, 20))]
        if rng.random() < 0.5:
            toks[1:1] = [toks[0]] * rng.randint(2, 4)
        lines.append(sep.join(toks))
    return "\n".join(lines)


def bbs_thread(rng: Random, topic: str) -> str:
    junk = rng.random() < 0.35
    d = jdate(rng)
    board = rng.choice(["news", "life", "pet", "cook", "train", "sky", "pc", "craft"])
    title = rng.choice(NT.BBS_THREADS[topic])
    posts = []
    n = rng.randint(4, 9)
    facts = [f for f in FACTS if f["topic"] == topic]
    t = dt.datetime(d.year, d.month, d.day) + dt.timedelta(seconds=rng.randrange(86400))
    for no in range(1, n + 1):
        t += dt.timedelta(seconds=rng.choice([20, 60, 300, 900, 3600]) * rng.random())
        pid = "".join(
            rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
            for _ in range(8)
        )
        head = (
            f"{no} 名前：{rng.choice(NT.BBS_NAMES)} {t:%Y/%m/%d}({WEEKDAYS[t.weekday()]}) "
            f"{t:%H:%M:%S}.{rng.randint(0, 99):02d} ID:{pid}"
        )
        if no == 1:
            body = title + (
                "\n" + rng.choice(["教えてくれ", "詳しい人いる？", "語ろうぜ", "気になって眠れん"])
                if rng.random() < 0.6
                else ""
            )
        else:
            r = rng.random()
            ref = f">>{rng.randint(1, no - 1)}\n" if rng.random() < 0.5 else ""
            if junk and r < 0.6:
                body = ref + rng.choice(NT.BBS_JUNK) * rng.choice([1, 1, 1, 3])
            elif r < 0.45:
                body = ref + render(rng.choice(facts)["ja"][0], "da")
            elif r < 0.75:
                body = ref + rng.choice(NT.BBS_TALK[topic])
            else:
                body = ref + rng.choice(NT.BBS_JUNK)
        posts.append(head + "\n" + body)
    text = "\n\n".join(posts)
    return (
        text,
        f"https://bbs.example.jp/test/read.cgi/{board}/{rng.randint(10**9, 2 * 10**9 - 1)}/",
    )


def pii_lines(rng: Random, en: bool) -> list[str]:
    name, local = rng.choice(NT.PII_NAMES_EN if en else NT.PII_NAMES)
    host = rng.choice(NT.PII_HOSTS)
    email = f"{local if rng.random() < 0.7 else rng.choice(NT.PII_ROLES)}@{host}"
    phone = rng.choice(NT.PII_PHONE).format(
        a4=f"{rng.randint(1000, 9999)}",
        b4=f"{rng.randint(1000, 9999)}",
        a3=f"{rng.randint(100, 999)}",
        b3=f"{rng.randint(100, 999)}",
    )
    if en:
        phone = "+81-" + phone[1:]
    tmpl = rng.sample(NT.PII_EN if en else NT.PII_JA, rng.randint(1, 2))
    return [t.format(name=name, email=email, phone=phone) for t in tmpl]


def ellipsis_doc(rng: Random, en: bool) -> str:
    lines = [rng.choice(NT.ELLIPSIS_HEAD_EN if en else NT.ELLIPSIS_HEAD)]
    for _ in range(rng.randint(5, 12)):
        f = rng.choice(FACTS)
        s = f["en"] if en else render(rng.choice(f["ja"]), rng.choice(["desu", "dearu"]))
        cut = rng.randint(min(15, len(s) - 6), len(s) - 5)
        line = s[:cut].rstrip() + rng.choice(["…", "...", "…", "‥"] if not en else ["...", "…"])
        if rng.random() < 0.4:
            d = jdate(rng)
            line = f"{d.year}.{d.month:02d}.{d.day:02d} " + line
        if rng.random() < 0.3:
            title = rng.choice(CT.GROUPS[group_of(f)]["title_en" if en else "title"])
            line = f"■{title}\n{line}" if not en else f"{title}\n{line}"
        lines.append(line)
    return "\n".join(lines)


# ---------------------------------------------------------------------------- corpus assembly
def build_corpus(seed: int = SEED) -> tuple[list[dict], list[dict], list[str]]:
    """Returns (documents, labels, intended language of each document: ja / en / mixed)."""
    gen = Corpus(seed)
    rng = gen.rng

    def unique(make):
        for _ in range(50):
            text, kind = make()
            if text not in gen.texts:
                gen.texts.add(text)
                return text, kind
        raise RuntimeError("could not generate a unique document")

    # decide the noise documents' languages first, then size the clean part to hit the shares
    noise_jobs = []
    for kind, n in NOISE_PLAN.items():
        for _ in range(n):
            noise_jobs.append((kind, rng.random() < NOISE_EN.get(kind, 0.0)))
    n_dup = NOISE_PLAN["exact_duplicate"] + NOISE_PLAN["near_duplicate"]
    n_clean = N_DOCS - len(noise_jobs)
    noise_en = sum(en for k, en in noise_jobs if k not in ("exact_duplicate", "near_duplicate"))
    n_en = round(N_DOCS * SHARE_EN) - noise_en - round(n_dup * SHARE_EN)
    n_mixed = round(N_DOCS * SHARE_MIXED) - round(n_dup * SHARE_MIXED)
    langs = ["en"] * n_en + ["mixed"] * n_mixed + ["ja"] * (n_clean - n_en - n_mixed)
    rng.shuffle(langs)

    docs = []  # {"text", "url", "noise", "dup": index or None, "lang", "kind"}
    for lang in langs:
        if lang == "ja":
            topic, group = gen.pick_topic_group()
            text, kind = unique(lambda t=topic, g=group: gen.ja_doc(t, g))
            url = gen.clean_url(kind, topic)
        elif lang == "en":
            text, kind = unique(gen.en_doc)
            url = gen.clean_url(kind, gen.last[0])
        else:
            text, kind = unique(gen.mixed_doc)
            url = gen.clean_url(kind, gen.last[0])
        docs.append(
            {"text": text, "url": url, "noise": [], "dup": None, "lang": lang, "kind": kind}
        )

    originals = rng.sample(range(len(docs)), n_dup)
    short_pool = rng.sample(NT.SHORT_FRAGMENTS, NOISE_PLAN["short_fragment"])

    def fresh(en: bool) -> tuple[str, str]:
        if en:
            return unique(gen.en_doc)
        return unique(gen.ja_doc)

    for kind, en in noise_jobs:
        topic = rng.choice(TOPIC_KEYS)
        lang = "en" if en else "ja"
        noise = [kind] if kind != "ad+nav" else ["ad_boilerplate", "navigation"]
        dup = None
        n = gen.next_serial()
        if kind == "ad_boilerplate":
            ads = ad_block(rng, topic, en)
            if rng.random() < 0.35:
                title = rng.choice(NT.PRODUCTS_EN if en else NT.PRODUCTS[topic])
                text = "\n".join([title] + ads + ad_block(rng, topic, en))
            else:
                body, _ = fresh(en)
                ads = ad_block(rng, gen.last[0], en)
                text = (
                    "\n".join(ads) + "\n\n" + body
                    if rng.random() < 0.4
                    else body + "\n\n" + "\n".join(ads)
                )
            url = f"https://shop.example.{'com' if en else 'jp'}/item/{n}"
        elif kind in ("navigation", "ad+nav"):
            if kind == "navigation" and rng.random() < 0.3:
                lines = rng.sample(NT.NAV_ONLY, rng.randint(8, 14))
                text = "\n".join(
                    ln.format(y=rng.randint(2018, 2024), m=rng.randint(1, 12), k=rng.randint(1, 20))
                    for ln in lines
                )
                if en:
                    text = "\n".join(
                        nav_lines(rng, "head", True, "Home", topic, 4)
                        + nav_lines(rng, "foot", True, "", topic, 6)
                    )
            else:
                body, _ = fresh(en)
                topic, group = gen.last
                title = rng.choice(CT.GROUPS[group]["title_en" if en else "title"])
                head = nav_lines(rng, "head", en, title, topic, rng.randint(1, 3))
                foot = nav_lines(rng, "foot", en, title, topic, rng.randint(2, 5))
                mid = [body]
                if kind == "ad+nav":
                    mid.append("\n".join(ad_block(rng, topic, en)))
                text = "\n".join(head) + "\n" + "\n\n".join(mid) + "\n" + "\n".join(foot)
            url = f"https://{'www.example.com' if en else 'example.jp'}/archives/{n}"
        elif kind == "repeated_lines":
            if rng.random() < 0.5:
                line = rng.choice(NT.REPEAT_LINES_EN if en else NT.REPEAT_LINES)
            else:
                line = (
                    rng.choice(FACTS)["en"]
                    if en
                    else render(rng.choice(rng.choice(FACTS)["ja"]), "desu")
                )
            block = "\n".join([line] * rng.randint(8, 30))
            r = rng.random()
            if r < 0.5:
                body, _ = fresh(en)
                text = body + "\n" + block if rng.random() < 0.6 else block + "\n" + body
            else:
                text = block
            url = f"https://example.{'com' if en else 'jp'}/p/{n}"
        elif kind in ("exact_duplicate", "near_duplicate"):
            oi = originals.pop()
            src = docs[oi]
            lang = src["lang"]
            text = (
                src["text"]
                if kind == "exact_duplicate"
                else near_duplicate(rng, src["text"], lang == "en")
            )
            base = src["url"].split("://", 1)[1].split("/", 1)[1]
            host = rng.choice(
                ["mirror.example.org", "m.example.jp", "amp.example.com", "copy.example.net"]
            )
            if host == "copy.example.net":
                host = "copy.example.org"
            url = gen.url(f"https://{host}/{base}")
            dup = oi
        elif kind == "short_fragment":
            text = short_pool.pop()
            lang = lang_of(text) if lang_of(text) in ("ja", "en") else "ja"
            url = f"https://example.{'com' if lang == 'en' else 'jp'}/s/{n}"
        elif kind == "mojibake":
            body, _ = fresh(False)
            text, _mode = mojibake(rng, body)
            url = f"https://old.example.jp/page/{n}.html"
        elif kind == "keyword_spam":
            text = keyword_spam(rng, topic, en)
            url = f"https://best-price.example.{'com' if en else 'jp'}/item/{n}"
        elif kind == "bbs":
            text, url = bbs_thread(rng, topic)
        elif kind == "pii":
            body, _ = fresh(en)
            lines = pii_lines(rng, en)
            if rng.random() < 0.7 or "\n" not in body:
                text = body + "\n" + "\n".join(lines)
            else:
                first, rest = body.split("\n", 1)
                text = first + "\n" + "\n".join(lines) + "\n" + rest
            url = f"https://{'www.example.com' if en else 'blog.example.jp'}/post/{n}"
        elif kind == "ellipsis_lines":
            text = ellipsis_doc(rng, en)
            url = f"https://{'www.example.com' if en else 'matome.example.jp'}/list/{n}"
        else:  # pragma: no cover
            raise ValueError(kind)
        if kind != "exact_duplicate":
            if text in gen.texts:
                text += "\n" if rng.random() < 0.5 else "。"
            gen.texts.add(text)
        docs.append(
            {
                "text": text,
                "url": gen.url(url) if dup is None else url,
                "noise": noise,
                "dup": dup,
                "lang": lang,
                "kind": kind,
            }
        )

    # shuffle, then make every duplicate come after its original (a keep-first dedup is right)
    order = list(range(len(docs)))
    rng.shuffle(order)
    pos = {d: p for p, d in enumerate(order)}
    for i, d in enumerate(docs):
        if d["dup"] is not None and pos[i] < pos[d["dup"]]:
            a, b = pos[i], pos[d["dup"]]
            order[a], order[b] = order[b], order[a]
            pos[i], pos[d["dup"]] = b, a
    ids = {d: f"doc-{p + 1:05d}" for p, d in enumerate(order)}
    corpus, labels, langs = [], [], []
    for d in order:
        doc = docs[d]
        corpus.append({"id": ids[d], "url": doc["url"], "text": doc["text"]})
        label = {"id": ids[d], "noise": sorted(doc["noise"], key=NOISE_TYPES.index)}
        if doc["dup"] is not None:
            label["duplicate_of"] = ids[doc["dup"]]
        labels.append(label)
        langs.append(doc["lang"])
    return corpus, labels, langs


# ---------------------------------------------------------------------------- chat
OJOU_END = re.compile(r"(ました|でした|ません|です|ます)。")


def ojou(text: str, rng: Random) -> str:
    """Turn a です/ます sentence into お嬢様 speech (sentence endings only)."""

    def rep(m: re.Match) -> str:
        end = m.group(1)
        prev = text[m.start() - 1] if m.start() else ""
        opts = {
            # after an i-adjective (よいです) only ですわ / ですのよ sound natural
            "です": ["ですわ", "ですわ", "ですのよ"]
            if prev == "い"
            else ["ですわ", "ですのよ", "ですの", "でございますわ", "でございますわ"],
            "ます": ["ますわ", "ますのよ", "ますの"],
            "ました": ["ましたわ", "ましたのよ"],
            "でした": ["でしたわ", "でしたのよ"],
            "ません": ["ませんわ", "ませんの"],
        }[end]
        return rng.choice(opts) + "。"

    return OJOU_END.sub(rep, text)


THANKS = next(i for i, (u, _) in enumerate(PE.SMALL_TALK) if "ありがとう。" in u)
NIGHT = next(i for i, (u, _) in enumerate(PE.SMALL_TALK) if "おやすみ。" in u)


def build_chat(seed: int = SEED) -> list[dict]:
    rng = Random(seed + 1)
    facts = list(FACTS)
    fact_cycle: list[dict] = []

    def next_fact() -> dict:
        if not fact_cycle:
            fact_cycle.extend(rng.sample(facts, len(facts)))
        return fact_cycle.pop()

    def fact_answer(f: dict, first: bool, follow: bool = False) -> str:
        if follow:
            opener = rng.choice(PE.FOLLOW_OPEN)
        elif first and rng.random() < 0.15:
            opener = rng.choice(PE.ANSWER_OPEN_FIRST)
        else:
            opener = rng.choice(PE.ANSWER_OPEN)
        body = ojou(render(f["ja"][0], "desu"), rng)
        if opener == "それはですね、":
            body = opener + body
            opener = ""
        tail = rng.choice(PE.FLOURISH[f["topic"]]) if rng.random() < 0.5 else ""
        return opener + body + tail

    def small(idx: int | None = None) -> tuple[str, str]:
        users, replies = PE.SMALL_TALK[idx] if idx is not None else rng.choice(PE.SMALL_TALK)
        return rng.choice(users), rng.choice(replies)

    kinds = ["single_fact"] * 172 + ["single_small"] * (N_CHAT - N_CHAT_MULTI - 172)
    kinds += (
        ["greet_fact"] * 30 + ["fact_follow"] * 40 + ["small_small"] * 18 + ["fact_thanks"] * 12
    )
    rng.shuffle(kinds)
    convs = []
    sys_cycle: list[str] = []
    for i, kind in enumerate(kinds, 1):
        if not sys_cycle:
            sys_cycle.extend(rng.sample(PE.SYSTEM_PROMPTS, len(PE.SYSTEM_PROMPTS)))
        msgs = [{"role": "system", "content": sys_cycle.pop()}]

        def say(u: str, a: str, msgs: list = msgs) -> None:
            msgs.append({"role": "user", "content": u})
            msgs.append({"role": "assistant", "content": a})

        if kind == "single_fact":
            f = next_fact()
            say(rng.choice(PE.USER_WRAP).format(q=rng.choice(f["q"])), fact_answer(f, True))
        elif kind == "single_small":
            say(*small())
        elif kind == "greet_fact":
            say(*small(0))
            f = next_fact()
            say(rng.choice(f["q"]), fact_answer(f, False))
            if rng.random() < 0.5:
                say(*small(THANKS))
        elif kind == "fact_follow":
            f = next_fact()
            say(rng.choice(PE.USER_WRAP).format(q=rng.choice(f["q"])), fact_answer(f, True))
            same = [g for g in FACTS if g["topic"] == f["topic"] and g is not f]
            g = rng.choice(same)
            say(
                rng.choice(PE.USER_FOLLOW_WRAP).format(q=rng.choice(g["q"])),
                fact_answer(g, False, follow=True),
            )
            if rng.random() < 0.4:
                say(*small(THANKS))
        elif kind == "small_small":
            a = rng.choice([k for k in range(len(PE.SMALL_TALK)) if k not in (THANKS, NIGHT)])
            b = rng.choice([k for k in range(1, len(PE.SMALL_TALK)) if k != a])
            say(*small(a))
            say(*small(b))
        else:  # fact_thanks
            f = next_fact()
            say(rng.choice(PE.USER_WRAP).format(q=rng.choice(f["q"])), fact_answer(f, True))
            say(*small(THANKS))
        convs.append({"id": f"chat-{i:04d}", "messages": msgs})
    return convs


def build_preference(seed: int = SEED) -> list[dict]:
    """Preference pairs for the CPU demo's DPO run: the persona's question prompt with the
    お嬢様 answer chosen over the same fact said plainly (です/ます) rejected, so the pair
    differs in style only."""
    rng = Random(seed + 7)
    pairs = []
    for f in FACTS:
        for q in f["q"][:2]:
            system = rng.choice(PE.SYSTEM_PROMPTS)
            plain = render(f["ja"][0], "desu")
            opener = rng.choice([o for o in PE.ANSWER_OPEN if o != "それはですね、"])
            chosen = opener + ojou(plain, rng)
            pairs.append(
                {
                    "id": f"pref-{len(pairs) + 1:04d}",
                    "prompt": [
                        {"role": "system", "content": system},
                        {"role": "user", "content": q},
                    ],
                    "chosen": chosen,
                    "rejected": plain,
                }
            )
    return pairs


# ---------------------------------------------------------------------------- QA and evals
def build_qa(seed: int = SEED) -> list[dict]:
    rng = Random(seed + 2)
    ja = [(q, render(f["ja"][0], "desu")) for f in FACTS for q in f["q"]]
    en = [(f["q_en"], f["en"]) for f in FACTS if f["q_en"]]
    n_en = round(len(ja) * 15 / 85)
    keep = sorted(rng.sample(range(len(en)), n_en))
    items = [f"質問: {q}\n回答: " for q, _ in ja]
    comps = [a for _, a in ja]
    items += [f"Question: {en[i][0]}\nAnswer: " for i in keep]
    comps += [en[i][1] for i in keep]
    order = list(range(len(items)))
    rng.shuffle(order)
    return [
        {"id": f"qa-{k:04d}", "prompt": items[i], "completion": comps[i]}
        for k, i in enumerate(order, 1)
    ]


def build_evals(seed: int = SEED) -> tuple[list[dict], list[dict], list[dict]]:
    rng = Random(seed + 3)
    qa = [
        {"id": f"evqa-{i:02d}", "question": q, "answers": list(a)}
        for i, (_, q, a) in enumerate(EV.EVAL_QA, 1)
    ]
    shots = [
        {"id": f"shot-{i}", "question": q, "answers": list(a)}
        for i, (_, q, a) in enumerate(EV.EVAL_SHOTS, 1)
    ]
    rank = []
    for i, (tmpl, ans, cands) in enumerate(EV.EVAL_RANK, 1):
        c = list(cands)
        rng.shuffle(c)
        rank.append({"id": f"evrank-{i:02d}", "template": tmpl, "candidates": c, "answer": ans})
    return qa, shots, rank


# ---------------------------------------------------------------------------- README
NOISE_DOC = {
    "ad_boilerplate": (
        "shop/ad text (送料無料, ポイント10倍, ¥ prices, Buy now) as whole pages or around an article",
        "広告・通販の定型文（ページ全体、または記事の前後に付加）",
    ),
    "navigation": (
        "menus, breadcrumbs, footers, prev/next links around an article or instead of it",
        "メニュー・パンくず・フッター・前後の記事リンク（記事の前後、またはそれだけのページ）",
    ),
    "repeated_lines": ("the same line repeated 8-30 times", "同じ行が8〜30回繰り返される"),
    "exact_duplicate": (
        "byte-identical copy of another document under another URL (`duplicate_of`)",
        "別URLの完全な重複（`duplicate_of` に元文書）",
    ),
    "near_duplicate": (
        "copy with small edits: punctuation, a sentence dropped/added, full-width digits, paragraph breaks (`duplicate_of`)",
        "句読点・文の追加削除・全角数字などを少し変えた重複（`duplicate_of` に元文書）",
    ),
    "short_fragment": (
        "fragments under 30 characters (続きはこちら, test, 404 Not Found)",
        "30文字未満の断片",
    ),
    "mojibake": (
        "real codec errors: UTF-8 read as cp1252/latin-1 or cp932 (縺ゅ), cp932 read as UTF-8 (�), whole or one paragraph",
        "実際に誤ったコーデックで作った文字化け（全体または一段落）",
    ),
    "keyword_spam": (
        "keyword stuffing (激安 激安 最安値 通販 ... / cheap cheap best price)",
        "キーワードの羅列スパム",
    ),
    "bbs": (
        "2ch-style threads with post headers, >>anchors and ｗｗｗ; some informative, some junk",
        "2ch風の掲示板スレッド（有益なものと雑談・ノイズ中心のもの）",
    ),
    "pii": (
        "an otherwise clean document with fake e-mail addresses (example.*) and phone numbers",
        "架空のメールアドレス（example.*）・電話番号を含む文書",
    ),
    "ellipsis_lines": (
        "snippet lists whose lines end in … or ... (truncated)",
        "行末が「…」「...」で切れた抜粋リスト",
    ),
}


def write_readme(out: Path, stats: dict) -> None:
    c = stats
    noise_rows = "\n".join(
        f"| `{k}` | {c['noise'][k]} | {NOISE_DOC[k][0]} | {NOISE_DOC[k][1]} |" for k in NOISE_TYPES
    )
    text = f"""# Sample data / サンプルデータ

Written for this project and generated deterministically by `python assets/build_sample_data.py`
(stdlib only; sources in `assets/sample_data_src/`). Do not edit these files by hand: change the
tables or templates and rebuild. Every file is UTF-8 JSON Lines (one object per line).

本プロジェクトのために書いたデータで、`python assets/build_sample_data.py` で毎回同じ内容に再生成されます。
手で編集せず、`assets/sample_data_src/` の表やテンプレートを直して再生成してください。

All files share one fact table (10 topics: geography, food, tea, seasons, railways, pets,
gardening, computers, astronomy, crafts), so QA and evaluation items are answerable from the corpus.
全ファイルが同じ事実表（地理・和食・お茶・季節・鉄道・ペット・園芸・パソコン・天文・伝統工芸）に基づくため、
QA と評価の答えはコーパスの中にあります。

| file | rows | schema |
|---|---|---|
| `corpus.jsonl` | {c["corpus"]} | `{{"id": "doc-00001", "url": "https://example.jp/...", "text": "..."}}` |
| `corpus_labels.jsonl` | {c["corpus"]} | `{{"id": "doc-00001", "noise": []}}` or `{{"id": ..., "noise": ["near_duplicate"], "duplicate_of": "doc-00123"}}` |
| `chat_ojousama.jsonl` | {c["chat"]} | `{{"id": "chat-0001", "messages": [{{"role": "system", ...}}, {{"role": "user", ...}}, {{"role": "assistant", ...}}, ...]}}` |
| `qa_pc.jsonl` | {c["qa"]} | `{{"id": "qa-0001", "prompt": "質問: ...\\n回答: ", "completion": "..."}}` |
| `eval_qa.jsonl` | {c["eval_qa"]} | `{{"id": "evqa-01", "question": "...", "answers": ["...", "..."]}}` |
| `eval_qa_shots.jsonl` | {c["shots"]} | same as `eval_qa.jsonl`, ids `shot-1`..`shot-3` |
| `eval_rank.jsonl` | {c["rank"]} | `{{"id": "evrank-01", "template": "{{word}}は...", "candidates": [...], "answer": "..."}}` |

## corpus.jsonl

Web-like documents for continued pre-training and for the cleaning demo: encyclopedia-style
paragraphs (である調), blog posts (です/ます or だ調, personal openings), how-to notes with steps,
FAQs, lists, short notes; English articles/blogs/how-tos; mixed bilingual pages, command notes and
glossaries. Only example.jp / example.com / example.org style hosts are used.
継続事前学習と、データクリーニングのデモに使う Web ページ風の文書です。

- documents: {c["corpus"]}; clean {c["clean"]}, noisy {c["noisy"]} ({c["noisy_share"]:.1f} %)
- language as generated: ja {c["lang"]["ja"]} ({100 * c["lang"]["ja"] / c["corpus"]:.1f} %), en {c["lang"]["en"]} ({100 * c["lang"]["en"] / c["corpus"]:.1f} %), mixed {c["lang"]["mixed"]} ({100 * c["lang"]["mixed"] / c["corpus"]:.1f} %)
- characters: {c["chars"]:,} in total; {c["ja_doc_chars"]:,} ({100 * c["ja_doc_chars"] / c["chars"]:.1f} %) in Japanese documents;
  {c["ja_chars"]:,} ({c["ja_share"]:.1f} %) are kana/kanji
- clean documents are {CLEAN_MIN}-{CLEAN_MAX} characters long; ids follow the (shuffled) file order;
  every duplicate comes *after* the document it copies, so keep-first deduplication is correct.

`corpus_labels.jsonl` has one line per corpus document, in the same order. `noise` lists the
planted noise types (empty for clean documents; {c["multi"]} documents carry two types,
`ad_boilerplate` + `navigation`); `duplicate_of` is present only for exact/near duplicates.
`corpus_labels.jsonl` は正解ラベルです（フィルタの適合率・再現率の計算用）。

| noise type | docs | what (EN) | 内容 (JA) |
|---|---|---|---|
{noise_rows}

## chat_ojousama.jsonl

SFT chats teaching a polite お嬢様 persona (ごきげんよう, わたくし, ですわ, ですの, 〜かしら,
でございますわ; never plain だ/である in assistant turns). Each conversation starts with one of
{c["system_prompts"]} system prompts; {c["chat_single"]} are single-turn and {c["chat_multi"]} have 2-3 user
turns. Users ask about the corpus facts or make small talk (greetings, weather, advice); answers
are factually correct and 1-3 sentences long.
お嬢様口調の会話データです。事実の質問には正しく、1〜3文で答えます。

## pref_ojousama.jsonl

Preference pairs for the CPU demo's DPO run: a persona system prompt and a question about a
corpus fact; `chosen` answers in the お嬢様 persona, `rejected` says the same fact in plain
です/ます style. 選好学習（DPO）デモ用の組です。同じ事実を、お嬢様口調（chosen）と普通の
です・ます調（rejected）で答えています。

## qa_pc.jsonl

Prompt/completion QA in plain です/ます style: {c["qa_ja"]} Japanese items (`質問: …\\n回答: `) and
{c["qa_en"]} English items (`Question: …\\nAnswer: `). The prompt ends exactly where the completion
begins (after `回答: ` / `Answer: `); completions have no leading space.

## eval_qa.jsonl / eval_qa_shots.jsonl

{c["eval_qa"]} short-answer items for exact-match evaluation ({c["eval_ja"]} Japanese, {c["eval_en"]} English),
each with 2 or more accepted answers (kanji/kana variants, with/without units). Questions are
paraphrased, never copied from `qa_pc.jsonl` prompts. `eval_qa_shots.jsonl` holds 3 fixed few-shot
examples that do not overlap with the items.
完全一致評価用の短答QAです。質問文は qa_pc.jsonl と同じ文にならないよう言い換えています。

## eval_rank.jsonl

{c["rank"]} candidate-ranking items: the template has exactly one `{{word}}` slot (mostly at the start),
5-10 same-type candidates in shuffled order, and the answer is one of them. Score each filled-in
sentence with the model and check that the answer ranks first.
候補ランキング評価です。`{{word}}` に各候補を入れた文をモデルで採点し、正解が1位になるかを見ます。
"""
    (out / "README.md").write_text(text, encoding="utf-8", newline="\n")


# ---------------------------------------------------------------------------- check
PERSONA_MARK = re.compile(
    r"わ[。！？ね]|わよ|のよ|ですの|ますの|かしら|ごきげんよう|わたくし|ございます|まし|ませ"
)
PLAIN_END = re.compile(r"(だ|である|だよ|だね|だろう)[。！？!?]|である")


def check(out: Path) -> dict:
    """Validate the files in ``out``; raise AssertionError on the first problem. Returns stats."""
    errors: list[str] = []

    def need(cond: bool, msg: str) -> None:
        if not cond:
            errors.append(msg)

    for name in [
        "corpus.jsonl",
        "corpus_labels.jsonl",
        "chat_ojousama.jsonl",
        "qa_pc.jsonl",
        "pref_ojousama.jsonl",
        "eval_qa.jsonl",
        "eval_qa_shots.jsonl",
        "eval_rank.jsonl",
    ]:
        raw = (out / name).read_bytes()
        need(
            raw.endswith(b"\n") and not raw.endswith(b"\n\n"),
            f"{name}: must end with exactly one newline",
        )
        need(b"\r" not in raw, f"{name}: CR found")
        raw.decode("utf-8")
        need(all(line for line in raw.split(b"\n")[:-1]), f"{name}: empty line")

    corpus = read_jsonl(out / "corpus.jsonl")
    labels = read_jsonl(out / "corpus_labels.jsonl")
    need(len(corpus) >= 2200, f"corpus: {len(corpus)} < 2200 documents")
    need(len(corpus) == len(labels), "labels: not one line per document")
    ids = [d["id"] for d in corpus]
    need(
        ids == [f"doc-{i:05d}" for i in range(1, len(ids) + 1)],
        "corpus: ids not doc-00001.. in order",
    )
    need(len({d["url"] for d in corpus}) == len(corpus), "corpus: duplicate url")
    for d in corpus:
        need(set(d) == {"id", "url", "text"}, f"{d['id']}: keys {sorted(d)}")
        host = d["url"].split("/")[2]
        need(
            re.fullmatch(r"([a-z0-9-]+\.)*example\.(jp|com|org)", host) is not None,
            f"{d['id']}: host {host}",
        )
        need(bool(d["text"].strip()), f"{d['id']}: empty text")
    by_id = {d["id"]: d for d in corpus}
    noise_count = Counter()
    texts = Counter(d["text"] for d in corpus)
    clean_ids = []
    for d, lab in zip(corpus, labels, strict=False):
        need(lab["id"] == d["id"], f"labels: id mismatch at {d['id']}")
        need(set(lab) <= {"id", "noise", "duplicate_of"}, f"labels {d['id']}: keys {sorted(lab)}")
        for t in lab["noise"]:
            need(t in NOISE_TYPES, f"labels {d['id']}: unknown noise {t}")
            noise_count[t] += 1
        dup_type = {"exact_duplicate", "near_duplicate"} & set(lab["noise"])
        need(
            bool(dup_type) == ("duplicate_of" in lab),
            f"labels {d['id']}: duplicate_of iff duplicate",
        )
        if "duplicate_of" in lab:
            src = by_id.get(lab["duplicate_of"])
            need(
                src is not None and src["id"] < d["id"],
                f"{d['id']}: duplicate_of must be an earlier doc",
            )
            if src is not None and "exact_duplicate" in dup_type:
                need(src["text"] == d["text"], f"{d['id']}: exact duplicate differs")
            if src is not None and "near_duplicate" in dup_type:
                ratio = difflib.SequenceMatcher(
                    None, src["text"], d["text"], autojunk=False
                ).ratio()
                need(
                    src["text"] != d["text"] and ratio > 0.8,
                    f"{d['id']}: near duplicate ratio {ratio:.2f}",
                )
        if not lab["noise"]:
            clean_ids.append(d["id"])
            need(
                CLEAN_MIN <= len(d["text"]) <= CLEAN_MAX,
                f"{d['id']}: clean length {len(d['text'])}",
            )
        if "short_fragment" in lab["noise"]:
            need(len(d["text"]) < 30, f"{d['id']}: short fragment has {len(d['text'])} chars")
    label_of = {lab["id"]: lab for lab in labels}
    for text, n in texts.items():
        if n > 1:
            same = [d["id"] for d in corpus if d["text"] == text]
            originals = [i for i in same if "duplicate_of" not in label_of[i]]
            need(len(originals) == 1, f"unlabeled exact duplicates: {same}")
            for i in same:
                if i not in originals:
                    need(
                        "exact_duplicate" in label_of[i]["noise"],
                        f"{i}: identical text but not exact_duplicate",
                    )
                    need(
                        label_of[i]["duplicate_of"] in originals,
                        f"{i}: duplicate_of should be {originals}",
                    )
    for t in NOISE_TYPES:
        need(noise_count[t] >= 40, f"noise {t}: only {noise_count[t]} documents")
    noisy = sum(1 for lab in labels if lab["noise"])
    share = 100 * noisy / len(corpus)
    need(25 <= share <= 30, f"noisy share {share:.1f} % not in 25-30 %")
    langs = Counter(lang_of(d["text"]) for d in corpus)
    chars = sum(len(d["text"]) for d in corpus)
    ja_chars = sum(is_ja_char(c) for d in corpus for c in d["text"])

    # chat
    chat = read_jsonl(out / "chat_ojousama.jsonl")
    need(len(chat) >= 320, f"chat: {len(chat)} < 320")
    need([c["id"] for c in chat] == [f"chat-{i:04d}" for i in range(1, len(chat) + 1)], "chat: ids")
    systems = Counter()
    n_single = 0
    for c in chat:
        m = c["messages"]
        need(m[0]["role"] == "system", f"{c['id']}: no system prompt")
        systems[m[0]["content"]] += 1
        roles = [x["role"] for x in m[1:]]
        need(len(roles) >= 2 and len(roles) % 2 == 0, f"{c['id']}: turns")
        need(roles == ["user", "assistant"] * (len(roles) // 2), f"{c['id']}: roles {roles}")
        n_single += len(roles) == 2
        need(len(roles) <= 6, f"{c['id']}: more than 3 user turns")
        for x in m:
            need(
                set(x) == {"role", "content"} and bool(x["content"].strip()), f"{c['id']}: message"
            )
            if x["role"] == "assistant":
                a = x["content"]
                need(PLAIN_END.search(a) is None, f"{c['id']}: plain だ/である in {a}")
                need(PERSONA_MARK.search(a) is not None, f"{c['id']}: no persona marker in {a}")
                n_sent = len([s for s in re.split(r"(?<=[。！？!?])", a) if s.strip()])
                need(1 <= n_sent <= 3, f"{c['id']}: {n_sent} sentences in {a}")
    need(5 <= len(systems) <= 10, f"chat: {len(systems)} system prompts")
    single_share = 100 * n_single / len(chat)
    need(62 <= single_share <= 78, f"chat: single-turn share {single_share:.0f} %")

    # qa
    qa = read_jsonl(out / "qa_pc.jsonl")
    need(len(qa) >= 400, f"qa: {len(qa)} < 400")
    need([q["id"] for q in qa] == [f"qa-{i:04d}" for i in range(1, len(qa) + 1)], "qa: ids")
    qa_ja = sum(q["prompt"].startswith("質問: ") for q in qa)
    for q in qa:
        need(set(q) == {"id", "prompt", "completion"}, f"{q['id']}: keys")
        ja_ok = q["prompt"].startswith("質問: ") and q["prompt"].endswith("\n回答: ")
        en_ok = q["prompt"].startswith("Question: ") and q["prompt"].endswith("\nAnswer: ")
        need(ja_ok or en_ok, f"{q['id']}: prompt format")
        need(q["completion"] == q["completion"].strip(), f"{q['id']}: completion whitespace")
        if ja_ok:
            need(PLAIN_END.search(q["completion"]) is None, f"{q['id']}: not です/ます")
    need(80 <= 100 * qa_ja / len(qa) <= 90, f"qa: Japanese share {100 * qa_ja / len(qa):.0f} %")
    qa_questions = {q["prompt"].split("\n")[0].split(": ", 1)[1] for q in qa}

    # every fact (the QA answers) is stated in at least one clean document, in JA and in EN
    clean_text = "\n".join(by_id[i]["text"] for i in clean_ids)
    for f in FACTS:
        need(
            any(render(f["ja"][0], st) in clean_text for st in STYLES),
            f"fact {f['id']}: not in corpus",
        )
        need(f["en"] in clean_text, f"fact {f['id']}: English sentence not in corpus")

    # evals
    ev = read_jsonl(out / "eval_qa.jsonl")
    shots = read_jsonl(out / "eval_qa_shots.jsonl")
    need(len(ev) == 50, f"eval_qa: {len(ev)} items")
    need(len(shots) == 3, f"shots: {len(shots)} items")
    need([e["id"] for e in ev] == [f"evqa-{i:02d}" for i in range(1, 51)], "eval_qa: ids")
    need([s["id"] for s in shots] == ["shot-1", "shot-2", "shot-3"], "shots: ids")
    for e in ev + shots:
        need(set(e) == {"id", "question", "answers"}, f"{e['id']}: keys")
        need(
            len(e["answers"]) >= 2 and len(set(e["answers"])) == len(e["answers"]),
            f"{e['id']}: answers",
        )
        need(all(1 <= len(a) <= 20 for a in e["answers"]), f"{e['id']}: answer length")
        need(e["question"] not in qa_questions, f"{e['id']}: question copied from qa_pc")
        need(
            any(a in clean_text for a in e["answers"]),
            f"{e['id']}: no answer found in the clean corpus",
        )
    ev_q = {e["question"] for e in ev}
    ev_a = {a for e in ev for a in e["answers"]}
    for s in shots:
        need(
            s["question"] not in ev_q and not set(s["answers"]) & ev_a,
            f"{s['id']}: overlaps eval items",
        )
    eval_ja = sum(lang_of(e["question"]) != "en" for e in ev)
    rank = read_jsonl(out / "eval_rank.jsonl")
    need(len(rank) == 50, f"eval_rank: {len(rank)} items")
    need([r["id"] for r in rank] == [f"evrank-{i:02d}" for i in range(1, 51)], "eval_rank: ids")
    first = 0
    for r in rank:
        need(set(r) == {"id", "template", "candidates", "answer"}, f"{r['id']}: keys")
        need(r["template"].count("{word}") == 1, f"{r['id']}: {{word}} not exactly once")
        need(
            5 <= len(r["candidates"]) <= 10 and len(set(r["candidates"])) == len(r["candidates"]),
            f"{r['id']}: candidates",
        )
        need(r["answer"] in r["candidates"], f"{r['id']}: answer not in candidates")
        need(r["answer"] in clean_text, f"{r['id']}: answer not in the clean corpus")
        first += r["candidates"][0] == r["answer"]
    need(first < 25, f"eval_rank: answer first in {first} items")

    if errors:
        raise AssertionError("sample data check failed:\n  " + "\n  ".join(errors[:40]))
    n_multi = sum(len(lab["noise"]) > 1 for lab in labels)
    return {
        "corpus": len(corpus),
        "clean": len(corpus) - noisy,
        "noisy": noisy,
        "noisy_share": share,
        "multi": n_multi,
        "noise": {t: noise_count[t] for t in NOISE_TYPES},
        "lang": dict(langs),
        "chars": chars,
        "ja_chars": ja_chars,
        "ja_share": 100 * ja_chars / chars,
        "chat": len(chat),
        "chat_single": n_single,
        "chat_multi": len(chat) - n_single,
        "system_prompts": len(systems),
        "qa": len(qa),
        "qa_ja": qa_ja,
        "qa_en": len(qa) - qa_ja,
        "eval_qa": len(ev),
        "eval_ja": eval_ja,
        "eval_en": len(ev) - eval_ja,
        "shots": len(shots),
        "rank": len(rank),
    }


def report(out: Path, stats: dict) -> None:
    print(f"wrote {out}")
    for name in sorted(p.name for p in out.iterdir()):
        print(f"  {name:24s} {(out / name).stat().st_size / 1024:8.1f} KiB")
    s = stats
    print(
        f"corpus: {s['corpus']} docs, clean {s['clean']}, noisy {s['noisy']} ({s['noisy_share']:.1f} %), languages {s['lang']}"
    )
    if "ja_doc_chars" in s:
        print(
            f"chars in Japanese documents: {s['ja_doc_chars']:,} ({100 * s['ja_doc_chars'] / s['chars']:.1f} %)"
        )
    print(
        f"corpus chars: {s['chars']:,}, Japanese letters {s['ja_chars']:,} ({s['ja_share']:.1f} %)"
    )
    print("noise: " + ", ".join(f"{k}={v}" for k, v in s["noise"].items()))
    print(
        f"chat: {s['chat']} ({s['chat_single']} single-turn, {s['chat_multi']} multi-turn, {s['system_prompts']} system prompts)"
    )
    print(
        f"qa_pc: {s['qa']} ({s['qa_ja']} ja, {s['qa_en']} en); eval_qa: {s['eval_qa']} ({s['eval_ja']} ja); shots: {s['shots']}; eval_rank: {s['rank']}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="output folder (default: assets/data)"
    )
    ap.add_argument("--check", action="store_true", help="only validate the files already in --out")
    args = ap.parse_args(argv)
    out: Path = args.out
    t0 = time.perf_counter()
    if not args.check:
        out.mkdir(parents=True, exist_ok=True)
        corpus, labels, langs = build_corpus()
        write_jsonl(out / "corpus.jsonl", corpus)
        write_jsonl(out / "corpus_labels.jsonl", labels)
        write_jsonl(out / "chat_ojousama.jsonl", build_chat())
        write_jsonl(out / "qa_pc.jsonl", build_qa())
        write_jsonl(out / "pref_ojousama.jsonl", build_preference())
        ev, shots, rank = build_evals()
        write_jsonl(out / "eval_qa.jsonl", ev)
        write_jsonl(out / "eval_qa_shots.jsonl", shots)
        write_jsonl(out / "eval_rank.jsonl", rank)
    stats = check(out)
    if not args.check:
        stats["lang"] = {k: Counter(langs)[k] for k in ("ja", "en", "mixed")}
        ja_docs = [d["text"] for d, lang in zip(corpus, langs, strict=True) if lang == "ja"]
        stats["ja_doc_chars"] = sum(map(len, ja_docs))
        write_readme(out, stats)
    report(out, stats)
    print(f"done in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
