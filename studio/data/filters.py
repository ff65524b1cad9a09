"""The cleaning filters: HojiChar's own where it has one, and the ones it lacks.

Every filter is a `hojichar.Filter` (so any of them can also go into a `hojichar.Compose`),
built from a `FilterSpec` that names its parameters with their types, defaults and bounds:
the pipeline YAML, the UI table and the CLI all go through `FILTERS`.

From HojiChar, used as they are or with a small override (noted on each):
`DocumentNormalizer` (nfkc: skips ASCII text), `DocumentLengthFilter` (doc_length),
`CharRepetitionRatioFilter` (char_repetition: the same ratio, counted faster),
`DiscardTooManyEndingEllipsis` (ellipsis_lines: counts non-empty lines and also ‥ and "..",
which NFKC makes of …/‥), `DiscardTooShortLines` (short_lines: blank lines are not counted and
the line length is a parameter), plus `DiscardAds`, `DiscardBBSComments`, `AcceptJapanese`,
`DiscardRareKuten`, `SingleCharacterRepetitionFilter`, `MaskPersonalInformation` and the
adult / discrimination / violence keyword lists (`hojichar_*`), for users who want them.

Added here: mojibake, japanese_ratio, hiragana_ratio, ascii_ratio, duplicate_lines,
keyword_spam, compression_ratio, ad_lines, nav_lines, bbs_junk, ng_words, pii_mask.

Speed matters (a corpus is millions of documents): filters share per-document work through
`Document.extras` (line splits, character counts) while the text is unchanged, count
character classes with one numpy table lookup, and avoid regular expressions that `re` must
try at every position (leading look-behinds, long alternations).
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import compress
from math import isqrt
from pathlib import Path
from typing import Any

import numpy as np
from hojichar import Document, Filter
from hojichar.filters import document_filters as hd

from studio.errors import StudioError


class PipelineError(StudioError, ValueError):
    """A pipeline (or one of its files) that cannot be used; the message says where."""


# --- shared character classes ------------------------------------------------------------

# Character classes for `_char_stats`, as a lookup table over the BMP (one numpy pass per
# document instead of a regex pass per class): 1 whitespace (what `str.split` splits on),
# 2 Japanese (katakana full and half width, CJK ideographs, 々〆〇), 3 hiragana (Japanese too).
_OTHER, _WHITE, _KANJI_KANA, _HIRA = 0, 1, 2, 3


def _class_table():
    table = np.zeros(0x10000, dtype=np.uint8)
    for lo, hi in [
        (0x30A0, 0x30FF),
        (0x31F0, 0x31FF),
        (0x3400, 0x4DBF),
        (0x4E00, 0x9FFF),
        (0xF900, 0xFAFF),
        (0xFF66, 0xFF9F),
        (0x3005, 0x3007),
    ]:
        table[lo : hi + 1] = _KANJI_KANA
    table[0x3041 : 0x309F + 1] = _HIRA
    for c in range(0x10000):
        if chr(c).isspace():
            table[c] = _WHITE
    return table


_TABLE = None


def _count(pattern: re.Pattern, text: str) -> int:
    return pattern.subn("", text)[1]


def char_counts(text: str) -> tuple[int, int, int]:
    """(non-space characters, Japanese characters, hiragana) of a text."""
    global _TABLE
    if _TABLE is None:
        _TABLE = _class_table()
    if text.isascii():
        return sum(map(len, text.split())), 0, 0
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    counts = np.bincount(_TABLE[np.minimum(codes, 0xFFFF)], minlength=4)
    return (
        len(text) - int(counts[_WHITE]),
        int(counts[_KANJI_KANA] + counts[_HIRA]),
        int(counts[_HIRA]),
    )


def _char_stats(doc: Document) -> tuple[int, int, int, int]:
    """(non-space chars, ASCII chars, Japanese chars, hiragana), cached on the document
    while its text is unchanged (several filters need them)."""
    cached = doc.extras.get("_studio_chars")
    if cached is not None and cached[0] is doc.text:
        return cached[1]
    text = doc.text
    nonspace, japanese, hiragana = char_counts(text)
    stats = (nonspace, len(text.encode("ascii", "ignore")), japanese, hiragana)
    doc.extras["_studio_chars"] = (text, stats)
    return stats


# --- filters HojiChar lacks -------------------------------------------------------------


class Mojibake(Filter):
    """Discards text decoded with the wrong codec: U+FFFD, C1 control characters, UTF-8
    read as latin-1/cp1252 (Ã£, â€, å + a control character) and UTF-8 read as cp932
    (縺, 繧, 繝: the lead bytes of hiragana and katakana). Drops when the share of such
    characters reaches `max_ratio` and there are at least `min_count`. Run it before NFKC,
    which rewrites some of the tell-tale characters."""

    _PATTERN = re.compile(
        "[\ufffd\u0080-\u009f\u7e3a\u7e67\u7e5d]"
        "|[\u00c2-\u00f4][\u00a0-\u00bf\u20ac\u201a\u0192\u201e\u2026\u2020\u2021\u02c6"
        "\u2030\u0160\u2039\u0152\u017d\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc"
        "\u2122\u0161\u203a\u0153\u017e\u0178]"
    )

    def __init__(self, max_ratio: float = 0.01, min_count: int = 3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_ratio = max_ratio
        self.min_count = min_count

    def score(self, text: str) -> float:
        if text.isascii() or not text:
            return 0.0
        return _count(self._PATTERN, text) / len(text)

    def apply(self, doc: Document) -> Document:
        text = doc.text
        if text.isascii() or not text:
            return doc
        bad = _count(self._PATTERN, text)
        if bad >= self.min_count and bad / len(text) >= self.max_ratio:
            doc.is_rejected = True
        return doc


class JapaneseRatio(Filter):
    """Discards documents whose share of Japanese characters (kana and kanji, among the
    non-space characters) is below `min_ratio`. With `keep_ascii_docs`, a document that is
    at least `ascii_ratio` ASCII (English, code) is not judged here and goes on to the
    other filters: that is how a Japanese corpus with some English in it is cleaned."""

    def __init__(
        self,
        min_ratio: float = 0.2,
        keep_ascii_docs: bool = True,
        ascii_ratio: float = 0.9,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.min_ratio = min_ratio
        self.keep_ascii_docs = keep_ascii_docs
        self.ascii_ratio = ascii_ratio

    def apply(self, doc: Document) -> Document:
        if not doc.text:
            return doc
        nonspace, ascii_chars, japanese, _ = _char_stats(doc)
        if self.keep_ascii_docs and ascii_chars >= self.ascii_ratio * len(doc.text):
            return doc
        if japanese < self.min_ratio * max(nonspace, 1):
            doc.is_rejected = True
        return doc


class HiraganaRatio(Filter):
    """Discards Japanese documents (at least `min_japanese_chars` kana/kanji) whose share of
    hiragana among the Japanese characters is below `min_ratio`: keyword lists, product
    catalogues and menus are nouns in kanji and katakana, running text is not."""

    def __init__(self, min_ratio: float = 0.2, min_japanese_chars: int = 50, **kwargs: Any):
        super().__init__(**kwargs)
        self.min_ratio = min_ratio
        self.min_japanese_chars = min_japanese_chars

    def apply(self, doc: Document) -> Document:
        _, _, japanese, hiragana = _char_stats(doc)
        if japanese >= self.min_japanese_chars and hiragana < self.min_ratio * japanese:
            doc.is_rejected = True
        return doc


class AsciiRatio(Filter):
    """Discards documents whose share of ASCII characters is below `min_ratio` (for an
    English corpus: drops Japanese and other scripts)."""

    def __init__(self, min_ratio: float = 0.8, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.min_ratio = min_ratio

    def apply(self, doc: Document) -> Document:
        if doc.text and len(doc.text.encode("ascii", "ignore")) < self.min_ratio * len(doc.text):
            doc.is_rejected = True
        return doc


class DuplicateLines(Filter):
    """Discards documents where the same lines come back (Gopher-style): the share of
    non-empty lines that repeat an earlier line exceeds `max_line_ratio`, or the share of
    characters in such lines exceeds `max_char_ratio`."""

    def __init__(
        self,
        max_line_ratio: float = 0.3,
        max_char_ratio: float = 0.2,
        min_lines: int = 3,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.max_line_ratio = max_line_ratio
        self.max_char_ratio = max_char_ratio
        self.min_lines = min_lines

    def apply(self, doc: Document) -> Document:
        lines = _cached_lines(doc)
        if len(lines) < self.min_lines:
            return doc
        counts = Counter(lines)
        if len(counts) == len(lines):
            return doc
        repeated = len(lines) - len(counts)
        if repeated > self.max_line_ratio * len(lines):
            doc.is_rejected = True
            return doc
        total = sum(map(len, lines))
        dup_chars = sum(len(line) * (n - 1) for line, n in counts.items() if n > 1)
        if dup_chars > self.max_char_ratio * total:
            doc.is_rejected = True
        return doc


class KeywordSpam(Filter):
    """Discards keyword stuffing (激安 激安 最安値 通販 ..., cheap cheap best price): the text
    split on spaces and list separators (, 、 | ｜ / ・) into at least `min_tokens` tokens,
    cut into windows of `window` tokens, where on average fewer than `min_unique_ratio` of a
    window's tokens are distinct (a mean segmental type-token ratio: unlike the plain ratio,
    it does not fall as a long article grows)."""

    _SPLIT = re.compile(r"[\s,、|｜/・]+")

    def __init__(
        self,
        min_unique_ratio: float = 0.5,
        min_tokens: int = 30,
        window: int = 50,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.min_unique_ratio = min_unique_ratio
        self.min_tokens = min_tokens
        self.window = window

    def unique_ratio(self, text: str) -> float | None:
        separators = sum(
            map(text.count, (" ", "\n", "\t", "\u3000", ",", "、", "|", "｜", "/", "・"))
        )
        if separators + 1 < self.min_tokens:
            return None  # prose without spaces: too few tokens, whatever the split
        tokens = self._SPLIT.split(text)
        if len(tokens) < self.min_tokens:
            return None
        tokens = [t for t in tokens if t]
        if len(tokens) < self.min_tokens:
            return None
        w = self.window
        windows = [tokens[i : i + w] for i in range(0, len(tokens), w)]
        if len(windows) > 1 and len(windows[-1]) < w // 2:
            last = windows.pop()
            windows[-1] = windows[-1] + last
        return sum(len(set(x)) / len(x) for x in windows) / len(windows)

    def apply(self, doc: Document) -> Document:
        ratio = self.unique_ratio(doc.text)
        if ratio is not None and ratio < self.min_unique_ratio:
            doc.is_rejected = True
        return doc


class CompressionRatio(Filter):
    """Discards documents that zlib (deflate, level `level`, 4 KB window) compresses too
    well (repetition, boilerplate: size after / size before below `min_ratio`) or, optionally, too badly (`max_ratio`, 0 = off:
    random strings, base64). Only documents of at least `min_bytes` are judged."""

    def __init__(
        self,
        min_ratio: float = 0.3,
        max_ratio: float = 0.0,
        min_bytes: int = 200,
        level: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.min_ratio = min_ratio
        self.max_ratio = max_ratio
        self.min_bytes = min_bytes
        self.level = level

    def ratio(self, raw: bytes) -> float:
        # raw deflate with a 4 KB window: half the time of zlib.compress's 32 KB set-up per
        # document, and repetition within a web page is found all the same
        packer = zlib.compressobj(self.level, zlib.DEFLATED, -12, 4)
        return (len(packer.compress(raw)) + len(packer.flush())) / len(raw)

    def apply(self, doc: Document) -> Document:
        raw = doc.text.encode("utf-8")
        if len(raw) < self.min_bytes:
            return doc
        ratio = self.ratio(raw)
        if ratio < self.min_ratio or (self.max_ratio and ratio > self.max_ratio):
            doc.is_rejected = True
        return doc


# Page furniture, line by line (matched against the stripped line in lower case): whole
# lines that are a menu word, and patterns found anywhere in a short line.
AD_LINES = frozenset(
    [
        "【pr】",
        "[pr]",
        "pr",
        "広告",
        "スポンサーリンク",
        "スポンサー",
        "sponsored",
        "advertisement",
        "ad",
    ]
)
AD_PATTERNS = [
    r"送料無料",
    r"ポイント\s*\d+\s*倍",
    r"カートに入れる",
    r"(?:ご購入|お買い求め|お申し込み)はこちら",
    r"今すぐ(?:購入|チェック|申し込|ダウンロード)",
    r"(?:在庫|残り)(?:あり|わずか)",
    r"あす楽",
    r"(?:期間|数量|初回|台数)限定",
    r"%\s*off\b",
    r"(?:クーポン|ポイント)を?(?:get|ゲット|プレゼント)",
    r"会員登録で",
    r"お一人様\s*\d+\s*(?:点|個)まで",
    r"この商品を(?:見た|買った)人",
    r"画像はイメージです",
    r"ランキング\s*\d+\s*位",
    r"セール(?:開催|実施)中",
    r"(?:buy now|shop now|add to cart|order now|free shipping|best seller|click here"
    r"|subscribe and save|limited time offer|sign up today|on sale now)",
    r"[¥￥]\s*\d|円\s*[（(]税込",
]
NAV_LINES = frozenset(
    [
        "関連記事", "人気記事", "人気記事ランキング", "新着記事", "最近の投稿", "最新記事",
        "おすすめ記事", "カテゴリー", "カテゴリ", "アーカイブ", "プロフィール", "サイトマップ",
        "rss", "検索", "検索:", "検索：", "ログイン", "新規登録", "タグ", "お問い合わせ",
        "プライバシーポリシー", "利用規約", "運営者情報", "ホーム", "home", "menu", "≡ menu",
        "≡menu", "メニュー", "≡ メニュー", "search", "search results", "recent posts",
        "related posts", "popular posts", "archives", "categories", "tags",
        "you may also like", "read more", "back to top", "ページトップへ", "ページトップへ戻る",
        "トップへ戻る", "▲ページの先頭へ", "▲ページトップへ", "▲top",
    ]
)  # fmt: skip
NAV_PATTERNS = [
    r"^\s*(?:ホーム|トップ|top|home)\s*[>＞»›]",  # breadcrumbs
    r"[>＞»›]\s*記事一覧\s*$",
    r"(?:ログイン|新規登録|お問い合わせ|サイトマップ|プライバシーポリシー|利用規約|運営者情報)"
    r"\s*[|｜]",
    r"(?:login|log in|sign up|contact|privacy policy|terms of use|sitemap)\s*\|",
    r"^ホーム\s+サイトについて",
    r"(?:前|次)の記事",
    r"(?:previous|next) (?:post|article|page)",
    r"(?:ページ|page)\s*の?\s*(?:先頭|トップ|top)",
    r"^(?:カテゴリー?|タグ)\s*[:：]",
    r"copyright|all rights reserved|©",
    r"シェアする|lineで送る|share this",
]


def _cached_split(doc: Document) -> list[str]:
    """`doc.text.split("\\n")`, shared by the line filters while the text is unchanged."""
    cached = doc.extras.get("_studio_split")
    if cached is not None and cached[0] is doc.text:
        return cached[1]
    lines = doc.text.split("\n")
    doc.extras["_studio_split"] = (doc.text, lines)
    return lines


def _cached_lines(doc: Document) -> list[str]:
    """Non-empty stripped lines, shared like `_cached_split`."""
    cached = doc.extras.get("_studio_lines")
    if cached is not None and cached[0] is doc.text:
        return cached[1]
    lines = [s for s in map(str.strip, _cached_split(doc)) if s]
    doc.extras["_studio_lines"] = (doc.text, lines)
    return lines


def _short(lines: list[str], limit: int) -> list[tuple[int, str]]:
    out = []
    for i, line in enumerate(lines):
        if len(line) <= limit:
            low = line.strip().lower()
            if low:
                out.append((i, low))
    return out


class PatternLines(Filter):
    """Lines of page furniture (ads or navigation): a short line that is one of `lines`
    (menu words) or contains one of `patterns` (regular expressions, matched in lower
    case), or one of the user's `extra_patterns` (any case). Only lines of at most
    `max_line_chars` characters count: furniture is short, and a paragraph that mentions
    送料無料 is not an ad. `action: drop` discards the document when at least `min_lines`
    lines match, or (in documents of 4+ non-empty lines) when more than `max_ratio` of them
    do; `action: strip` removes the matching lines and keeps the rest of the document."""

    def __init__(
        self,
        patterns: list[str] | None = None,
        lines: frozenset[str] = frozenset(),
        extra_patterns: list[str] | None = None,
        min_lines: int = 2,
        max_ratio: float = 0.5,
        max_line_chars: int = 100,
        action: str = "drop",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.min_lines = min_lines
        self.max_ratio = max_ratio
        self.max_line_chars = max_line_chars
        self.action = action
        self._lines = frozenset(lines)
        # one regex per pattern: Python's `re` scans a long alternation position by position,
        # separate patterns with a literal start are found much faster
        self._regexes = [re.compile(p, re.M) for p in patterns or []]
        extra = list(extra_patterns or [])
        self._extra = (
            re.compile("|".join(f"(?:{p})" for p in extra), re.M | re.I) if extra else None
        )

    def hits(self, lines: list[str], short: list[tuple[int, str]] | None = None) -> list[bool]:
        """For each line, whether it is furniture. `short`: (index, stripped lower-case
        text) of the non-empty lines of at most max_line_chars (computed when not given)."""
        if short is None:
            short = _short(lines, self.max_line_chars)
        words = self._lines
        hits = [False] * len(lines)
        rest = []
        for i, low in short:
            if low in words:
                hits[i] = True
            else:
                rest.append(i)
        if rest:
            regexes, extra = self._regexes, self._extra
            joined = "\n".join(lines[i] for i in rest)
            low = joined.lower()
            if any(r.search(low) for r in regexes) or (extra is not None and extra.search(joined)):
                for i in rest:
                    line = lines[i]
                    low = line.lower()
                    hits[i] = any(r.search(low) for r in regexes) or (
                        extra is not None and extra.search(line) is not None
                    )
        return hits

    def apply(self, doc: Document) -> Document:
        lines = _cached_split(doc)
        key = ("_studio_short", self.max_line_chars)
        cached = doc.extras.get(key)
        if cached is not None and cached[0] is doc.text:
            short = cached[1]
        else:
            short = _short(lines, self.max_line_chars)
            doc.extras[key] = (doc.text, short)
        hits = self.hits(lines, short)
        matched = sum(hits)
        if not matched:
            return doc
        if self.action == "strip":
            doc.text = "\n".join(compress(lines, [not h for h in hits])).strip("\n")
            return doc
        nonempty = len(_cached_lines(doc)) or 1
        if matched >= self.min_lines or (nonempty >= 4 and matched > self.max_ratio * nonempty):
            doc.is_rejected = True
        return doc


class BBSJunk(Filter):
    """Discards 2ch-style threads (at least `min_posts` post headers such as
    `12 名前：名無しさん 2021/11/07(日) 08:10:31.15 ID:abc`) in which fewer than
    `min_content_ratio` of the replies carry content: at least `min_post_chars` letters
    once >>anchors and symbols are taken out (ｗｗｗ, それな, age are not content). Set
    `min_content_ratio` to 1.01 to drop every thread."""

    _HEADER = re.compile(
        r"^\s*\d{1,5}\s*(?:名前\s*)?[:：]?[^\n]{0,80}?\d{4}/\d{1,2}/\d{1,2}[^\n]*$", re.M
    )
    _ANCHOR = re.compile(r"[>＞]{1,2}\s*\d+(?:-\d+)?")
    _LETTER = re.compile(r"[^\W\d_]")

    def __init__(
        self,
        min_posts: int = 3,
        min_content_ratio: float = 0.5,
        min_post_chars: int = 8,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.min_posts = min_posts
        self.min_content_ratio = min_content_ratio
        self.min_post_chars = min_post_chars

    def content_ratio(self, text: str) -> float | None:
        """Share of replies with content, or None when the text is not a thread."""
        heads = list(self._HEADER.finditer(text))
        if len(heads) < self.min_posts:
            return None
        bodies = [
            text[h.end() : heads[i + 1].start() if i + 1 < len(heads) else len(text)]
            for i, h in enumerate(heads)
        ][1:]
        if not bodies:
            return None
        good = 0
        for body in bodies:
            body = self._ANCHOR.sub("", body)
            letters = self._LETTER.findall(body)
            # a run of one repeated word (マジかよマジかよ) is not content either
            if len(letters) >= self.min_post_chars and len(set(letters)) > 3:
                good += 1
        return good / len(bodies)

    def apply(self, doc: Document) -> Document:
        ratio = self.content_ratio(doc.text)
        if ratio is not None and ratio < self.min_content_ratio:
            doc.is_rejected = True
        return doc


def read_word_list(path: str | Path) -> list[str]:
    """Words from a UTF-8 text file, one per line (blank lines and `#` comments skipped).
    A file that is not UTF-8 raises `PipelineError` naming it and the first bad byte."""
    from studio.safety import UnsafeInputError, read_user_file

    path = Path(path)
    try:
        raw = read_user_file(path)  # not a FIFO, a device or a huge file
    except OSError as exc:
        raise PipelineError(f"cannot read the NG-word list {path}: {exc.strerror or exc}") from exc
    except UnsafeInputError as exc:
        raise PipelineError(f"cannot use the NG-word list: {exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise PipelineError(
            f"the NG-word list {path.name} is not UTF-8 (byte 0x{raw[exc.start]:02x} on line "
            f"{line}); save it as UTF-8 and load it again"
        ) from exc
    return parse_words(text)


def parse_words(text: str) -> list[str]:
    words = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            words.append(line)
    return list(dict.fromkeys(words))


class NgWords(Filter):
    """Discards documents containing any word of an editable list (`words`, plus the lines
    of `words_file`, a UTF-8 text file). Like HojiChar's NgWordsFilterJa: a katakana word
    does not match inside a longer katakana word when `katakana_boundary` is on (アス in
    アスパラガス); ASCII words match whole words only, case-insensitively."""

    def __init__(
        self,
        words: list[str] | None = None,
        words_file: str = "",
        katakana_boundary: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        all_words = list(words or [])
        if words_file:
            all_words += read_word_list(words_file)
        self.words_file = words_file
        self.katakana_boundary = katakana_boundary
        # One alternation of plain words (found fast by `re`); the word boundaries are
        # checked on each candidate instead of with look-behinds, which would make `re`
        # try every position of every document.
        self._kind: dict[str, str] = {}
        for w in dict.fromkeys(w.strip() for w in all_words if w and w.strip()):
            if w.isascii():
                self._kind[w.lower()] = "ascii"
            elif katakana_boundary and re.fullmatch(r"[ァ-ヴー]+", w):
                self._kind[w] = "katakana"
            else:
                self._kind[w] = "plain"
        self.n_words = len(self._kind)
        words_sorted = sorted(self._kind, key=len, reverse=True)  # longest first
        self._regex = (
            re.compile("|".join(map(re.escape, words_sorted)), re.IGNORECASE)
            if words_sorted
            else None
        )

    def _bounded(self, text: str, start: int, end: int, kind: str) -> bool:
        before = text[start - 1] if start else ""
        after = text[end] if end < len(text) else ""
        if kind == "ascii":
            return not (before.isascii() and before.isalnum()) and not (
                after.isascii() and after.isalnum()
            )
        if kind == "katakana":
            return not _is_katakana(before) and not _is_katakana(after)
        return True

    def find(self, text: str) -> str | None:
        """The first NG word in `text` (as written there), or None."""
        if self._regex is None:
            return None
        pos = 0
        while (m := self._regex.search(text, pos)) is not None:
            found = m.group()
            kind = self._kind.get(found) or self._kind.get(found.lower()) or "plain"
            if self._bounded(text, m.start(), m.end(), kind):
                return found
            pos = m.start() + 1
        return None

    def apply(self, doc: Document) -> Document:
        if self.find(doc.text) is not None:
            doc.is_rejected = True
        return doc


def _is_katakana(c: str) -> bool:
    return bool(c) and ("ァ" <= c <= "ヴ" or c == "ー")


class PiiMask(Filter):
    """Masks e-mail addresses and phone numbers (Japanese 0X-XXXX-XXXX, 0120, +81 and
    other +CC numbers, (555) 123-4567): the text is rewritten, the document is kept.
    HojiChar's MaskPersonalInformation hides only the last four digits and misses 0120-
    numbers; this one replaces the whole match with `email_mask` / `phone_mask`."""

    _EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
    # No look-behind at the start (it would make `re` try every position): what precedes a
    # match is checked in `_phone_sub`.
    _PHONE = re.compile(
        r"(?:\+\d{1,3}[\- ]?\(?\d{1,4}\)?|\(?0\d{1,4}\)?)[\- ]?\d{1,4}[\- ]?\d{3,4}(?![\w\-])"
        r"|\(\d{3}\)\s?\d{3}-\d{4}(?![\w\-])"
    )

    def __init__(
        self,
        email: bool = True,
        phone: bool = True,
        email_mask: str = "[EMAIL]",
        phone_mask: str = "[PHONE]",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.email = email
        self.phone = phone
        self.email_mask = email_mask
        self.phone_mask = phone_mask

    def _phone_sub(self, m: re.Match) -> str:
        found = m.group()
        start = m.start()
        if start and (m.string[start - 1].isalnum() or m.string[start - 1] in "_+-."):
            return found  # part of a longer token (an ID, a version, a sum)
        digits = sum(c.isdigit() for c in found)
        return self.phone_mask if 9 <= digits <= 15 else found

    def mask(self, text: str) -> str:
        if self.email and "@" in text:
            text = self._EMAIL.sub(self.email_mask, text)
        if self.phone:
            text = self._PHONE.sub(self._phone_sub, text)
        return text

    def apply(self, doc: Document) -> Document:
        doc.text = self.mask(doc.text)
        return doc


# --- HojiChar's filters, with small overrides ------------------------------------------


class Nfkc(hd.DocumentNormalizer):
    """HojiChar's DocumentNormalizer (NFKC), skipping ASCII text, which NFKC leaves as is."""

    def apply(self, document: Document) -> Document:
        if not document.text.isascii():
            super().apply(document)
        return document


class CharRepetition(hd.CharRepetitionRatioFilter):
    """HojiChar's CharRepetitionRatioFilter (BigScience's character n-gram repetition: the
    share of the text in its sqrt(#distinct) most frequent n-grams), the same ratio computed
    faster: short texts count their n-grams with `collections.Counter`; longer ones number
    their distinct characters (b bits each), pack every n-gram exactly into one 64-bit
    integer (when n * b <= 63) and count them with a numpy sort."""

    NUMPY_FROM = 200  # characters; below, the Counter is quicker

    @staticmethod
    def compute_character_repetition_ratio(document: str, character_repetition_length: int):
        n = character_repetition_length
        stop = len(document) - n + 1
        if stop <= 0:
            return 0.0
        if len(document) >= CharRepetition.NUMPY_FROM:
            freqs = _ngram_counts_numpy(document, n, stop)
            if freqs is not None:
                ones = int(np.count_nonzero(freqs == 1))
                k = min(isqrt(len(freqs)), len(freqs) - ones)
                freqs[::-1].sort()  # descending
                return float(freqs[:k].sum()) / stop
        counts = Counter([document[i : i + n] for i in range(stop)])
        freqs = sorted(counts.values(), reverse=True)
        ones = freqs.count(1) if freqs[-1] == 1 else 0
        k = min(isqrt(len(freqs)), len(freqs) - ones)
        return sum(freqs[:k]) / stop


def _ngram_counts_numpy(text: str, n: int, stop: int):
    """How often each distinct character n-gram occurs (exact), or None when the n-grams
    do not fit one 64-bit integer (very many distinct characters, or a large n)."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    chars, ranks = np.unique(codes, return_inverse=True)
    bits = max(1, (len(chars) - 1).bit_length())
    if bits * n > 63:
        return None
    ranks = ranks.astype(np.uint64)
    keys = ranks[:stop].copy()
    shift = np.uint64(bits)
    for k in range(1, n):
        keys <<= shift
        keys |= ranks[k : k + stop]
    keys.sort()
    starts = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    return np.diff(np.concatenate(([0], starts, [stop])))


class EndingEllipsis(hd.DiscardTooManyEndingEllipsis):
    """HojiChar's DiscardTooManyEndingEllipsis, counting non-empty lines (the last one too)
    and the ellipses NFKC produces: … → "...", ‥ → "..". Drops when more than `threshold`
    of at least `min_lines` lines end in one."""

    _END = re.compile(r"(?:…|‥|\.{2,})[ \t\u3000]*$", re.M)

    def __init__(self, threshold: float = 0.3, min_lines: int = 3, **kwargs: Any) -> None:
        super().__init__(threshold=threshold, **kwargs)
        self.min_lines = min_lines

    def apply(self, doc: Document) -> Document:
        text = doc.text
        if "…" not in text and "‥" not in text and ".." not in text:
            return doc
        nonempty = len(_cached_lines(doc))
        if nonempty >= self.min_lines and len(self._END.findall(text)) > self.threshold * nonempty:
            doc.is_rejected = True
        return doc


class ShortLines(hd.DiscardTooShortLines):
    """HojiChar's DiscardTooShortLines (menus, breadcrumbs): drops when more than
    `threshold` of the lines are at most `max_line_length` characters. Blank lines are not
    counted (HojiChar counts them, so a text with blank lines between paragraphs fails);
    documents of fewer than `min_lines` lines are not judged."""

    def __init__(
        self,
        threshold: float = 0.5,
        max_line_length: int = 10,
        min_lines: int = 5,
        **kwargs: Any,
    ) -> None:
        super().__init__(threshold=threshold, **kwargs)
        self.minimum_line_length = max_line_length
        self.min_lines = min_lines

    def apply(self, doc: Document) -> Document:
        lines = _cached_lines(doc)
        if len(lines) >= self.min_lines:
            short = sum(1 for line in lines if len(line) <= self.minimum_line_length)
            if short > self.threshold * len(lines):
                doc.is_rejected = True
        return doc


# --- the registry ---------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # "int", "float", "bool", "str", "words" (list of strings), "choice"
    default: Any
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    help: str = ""


@dataclass(frozen=True)
class FilterSpec:
    name: str
    build: Callable[..., Filter]
    params: tuple[Param, ...] = ()
    rewrites: bool = False  # changes the text instead of dropping documents
    origin: str = "studio"  # "hojichar": HojiChar's filter (as is, or with an override)
    hojichar: str | None = None  # HojiChar's class doing the same job (for the reference)
    help: str = ""
    fixed: dict = field(default_factory=dict)  # arguments the user does not set

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


def _ratio(name: str, default: float, help: str = "", max: float = 1.0) -> Param:
    return Param(name, "float", default, 0.0, max, help=help)


def _hoji(cls, **rename):
    """A builder for a HojiChar filter whose parameters we name differently."""

    def build(**params):
        return cls(**{rename.get(k, k): v for k, v in params.items()})

    return build


FILTERS: dict[str, FilterSpec] = {}


def _register(spec: FilterSpec) -> None:
    FILTERS[spec.name] = spec


_register(
    FilterSpec(
        "nfkc",
        Nfkc,
        rewrites=True,
        origin="hojichar",
        hojichar="DocumentNormalizer",
        help="Unicode NFKC normalisation (full-width ASCII to half width, half-width kana "
        "to full width, … to ...)",
    )
)
_register(
    FilterSpec(
        "doc_length",
        _hoji(hd.DocumentLengthFilter, min_chars="min_doc_len", max_chars="max_doc_len"),
        (
            Param("min_chars", "int", 50, 0, None, help="fewer characters: dropped"),
            Param("max_chars", "int", 100_000, 1, None, help="more characters: dropped"),
        ),
        origin="hojichar",
        hojichar="DocumentLengthFilter",
        help="document length in characters",
    )
)
_register(
    FilterSpec(
        "mojibake",
        Mojibake,
        (
            _ratio("max_ratio", 0.01, "share of mojibake characters that drops a document"),
            Param("min_count", "int", 3, 1, None, help="and at least this many of them"),
        ),
        help="text decoded with the wrong codec (縺ゅ, Ã£, â€, U+FFFD)",
    )
)
_register(
    FilterSpec(
        "japanese_ratio",
        JapaneseRatio,
        (
            _ratio("min_ratio", 0.2, "minimum share of kana and kanji"),
            Param("keep_ascii_docs", "bool", True, help="do not judge mostly-ASCII documents"),
            _ratio("ascii_ratio", 0.9, "share of ASCII that makes a document mostly ASCII"),
        ),
        hojichar="AcceptJapanese",
        help="share of Japanese characters",
    )
)
_register(
    FilterSpec(
        "hiragana_ratio",
        HiraganaRatio,
        (
            _ratio("min_ratio", 0.2, "minimum share of hiragana among Japanese characters"),
            Param(
                "min_japanese_chars",
                "int",
                50,
                0,
                None,
                help="judge only documents with at least this many Japanese characters",
            ),
        ),
        help="share of hiragana (running text rather than keyword lists)",
    )
)
_register(
    FilterSpec(
        "ascii_ratio",
        AsciiRatio,
        (_ratio("min_ratio", 0.8, "minimum share of ASCII characters"),),
        help="share of ASCII characters (for English corpora)",
    )
)
_register(
    FilterSpec(
        "duplicate_lines",
        DuplicateLines,
        (
            _ratio("max_line_ratio", 0.3, "share of lines repeating an earlier line"),
            _ratio("max_char_ratio", 0.2, "share of characters in repeated lines"),
            Param(
                "min_lines", "int", 3, 1, None, help="judge documents of at least this many lines"
            ),
        ),
        help="repeated lines",
    )
)
_register(
    FilterSpec(
        "char_repetition",
        CharRepetition,
        (
            _ratio("threshold", 0.33, "share of the text in the most frequent n-grams"),
            Param("ngram_size", "int", 5, 1, 50, help="n-gram length in characters"),
        ),
        origin="hojichar",
        hojichar="CharRepetitionRatioFilter",
        help="character n-gram repetition",
    )
)
_register(
    FilterSpec(
        "keyword_spam",
        KeywordSpam,
        (
            _ratio("min_unique_ratio", 0.5, "minimum share of distinct tokens in a window"),
            Param("window", "int", 50, 2, None, help="tokens per window"),
            Param(
                "min_tokens",
                "int",
                30,
                1,
                None,
                help="judge documents of at least this many space/separator tokens",
            ),
        ),
        help="keyword stuffing",
    )
)
_register(
    FilterSpec(
        "compression_ratio",
        CompressionRatio,
        (
            _ratio("min_ratio", 0.3, "zlib size after / before below this: dropped", max=10),
            _ratio("max_ratio", 0.0, "above this: dropped (0 = off)", max=10),
            Param(
                "min_bytes", "int", 200, 0, None, help="judge documents of at least this many bytes"
            ),
            Param("level", "int", 1, 1, 9, help="zlib level"),
        ),
        help="zlib compression ratio (repetitive text compresses too well)",
    )
)
_PATTERN_PARAMS = (
    Param("extra_patterns", "words", [], help="more regular expressions, one per line"),
    Param("min_lines", "int", 2, 1, None, help="drop when at least this many lines match"),
    _ratio("max_ratio", 0.5, "or when more than this share of the lines match (4+ lines)"),
    Param("max_line_chars", "int", 100, 1, None, help="longer lines are never furniture"),
    Param(
        "action",
        "choice",
        "drop",
        choices=("drop", "strip"),
        help="drop the document, or strip the matching lines",
    ),
)
_register(
    FilterSpec(
        "ad_lines",
        PatternLines,
        _PATTERN_PARAMS,
        hojichar="DiscardAds",
        help="shop and ad boilerplate lines (送料無料, ポイント10倍, ¥ prices, Buy now)",
        fixed={"patterns": AD_PATTERNS, "lines": AD_LINES},
    )
)
_register(
    FilterSpec(
        "nav_lines",
        PatternLines,
        _PATTERN_PARAMS,
        help="navigation lines (menus, breadcrumbs, footers, prev/next links)",
        fixed={"patterns": NAV_PATTERNS, "lines": NAV_LINES},
    )
)
_register(
    FilterSpec(
        "bbs_junk",
        BBSJunk,
        (
            Param("min_posts", "int", 3, 1, None, help="post headers that make a thread"),
            _ratio("min_content_ratio", 0.5, "minimum share of replies with content", max=1.01),
            Param("min_post_chars", "int", 8, 1, None, help="letters that make a reply content"),
        ),
        hojichar="DiscardBBSComments",
        help="2ch-style threads whose replies are mostly noise (ｗｗｗ, それな, >>anchors)",
    )
)
_register(
    FilterSpec(
        "ellipsis_lines",
        EndingEllipsis,
        (
            _ratio("threshold", 0.3, "share of lines ending in … or ..."),
            Param(
                "min_lines", "int", 3, 1, None, help="judge documents of at least this many lines"
            ),
        ),
        origin="hojichar",
        hojichar="DiscardTooManyEndingEllipsis",
        help="lines cut off with an ellipsis (snippet lists)",
    )
)
_register(
    FilterSpec(
        "short_lines",
        ShortLines,
        (
            _ratio("threshold", 0.5, "share of short lines"),
            Param(
                "max_line_length", "int", 10, 1, None, help="a line this long or shorter is short"
            ),
            Param(
                "min_lines", "int", 5, 1, None, help="judge documents of at least this many lines"
            ),
        ),
        origin="hojichar",
        hojichar="DiscardTooShortLines",
        help="share of short lines (menus, tag clouds)",
    )
)
_register(
    FilterSpec(
        "ng_words",
        NgWords,
        (
            Param("words", "words", [], help="the words, one per line"),
            Param("words_file", "str", "", help="a UTF-8 text file with more words"),
            Param(
                "katakana_boundary",
                "bool",
                True,
                help="katakana words do not match inside longer katakana words",
            ),
        ),
        hojichar="NgWordsFilterJa",
        help="an editable NG-word list",
    )
)
_register(
    FilterSpec(
        "pii_mask",
        PiiMask,
        (
            Param("email", "bool", True, help="mask e-mail addresses"),
            Param("phone", "bool", True, help="mask phone numbers"),
            Param("email_mask", "str", "[EMAIL]", help="replacement for an address"),
            Param("phone_mask", "str", "[PHONE]", help="replacement for a number"),
        ),
        rewrites=True,
        hojichar="MaskPersonalInformation",
        help="mask e-mail addresses and phone numbers (rewrites, never drops)",
    )
)

# HojiChar's filters as they are.
for _name, _cls, _params, _rewrites, _help in [
    (
        "hojichar_ads",
        hd.DiscardAds,
        (Param("max_allowed_num", "int", 14, 0, None, help="ad keywords allowed"),),
        False,
        "HojiChar DiscardAds: more than max_allowed_num ad keywords (its dictionary)",
    ),
    (
        "hojichar_bbs",
        hd.DiscardBBSComments,
        (Param("max_allowed_num", "int", 14, 0, None, help="BBS pattern matches allowed"),),
        False,
        "HojiChar DiscardBBSComments: more than max_allowed_num BBS-like patterns",
    ),
    (
        "hojichar_accept_japanese",
        hd.AcceptJapanese,
        (Param("lookup_size", "int", 50, 1, None, help="characters looked at"),),
        False,
        "HojiChar AcceptJapanese: kana within the first lookup_size characters",
    ),
    (
        "hojichar_rare_kuten",
        hd.DiscardRareKuten,
        (Param("max_average_sentence_length", "int", 100, 1, None, help="characters per 。"),),
        False,
        "HojiChar DiscardRareKuten: too few 。 for the length",
    ),
    (
        "hojichar_single_char_repetition",
        hd.SingleCharacterRepetitionFilter,
        (Param("threshold", "int", 200, 2, None, help="one character repeated this often"),),
        False,
        "HojiChar SingleCharacterRepetitionFilter",
    ),
    (
        "hojichar_adult_ja",
        hd.DiscardAdultContentJa,
        (Param("ignore_confused", "bool", True, help="katakana words match only on their own"),),
        False,
        "HojiChar DiscardAdultContentJa (its keyword list; has false positives)",
    ),
    (
        "hojichar_adult_en",
        hd.DiscardAdultContentEn,
        (),
        False,
        "HojiChar DiscardAdultContentEn (its keyword list)",
    ),
    (
        "hojichar_discrimination_ja",
        hd.DiscardDiscriminationContentJa,
        (Param("ignore_confused", "bool", True, help="katakana words match only on their own"),),
        False,
        "HojiChar DiscardDiscriminationContentJa (its keyword list)",
    ),
    (
        "hojichar_violence_ja",
        hd.DiscardViolenceContentJa,
        (Param("ignore_confused", "bool", True, help="katakana words match only on their own"),),
        False,
        "HojiChar DiscardViolenceContentJa (its keyword list)",
    ),
    (
        "hojichar_pii_mask",
        hd.MaskPersonalInformation,
        (),
        True,
        "HojiChar MaskPersonalInformation: hides the last 4 digits of phone numbers and "
        "e-mail addresses as xxxx@yyy",
    ),
]:
    _register(
        FilterSpec(
            _name,
            _cls,
            _params,
            rewrites=_rewrites,
            origin="hojichar",
            hojichar=_cls.__name__,
            help=_help,
        )
    )


def build_filter(name: str, params: dict) -> Filter:
    """An instance of filter `name` with `params` (already validated)."""
    spec = FILTERS[name]
    return spec.build(**spec.fixed, **params)
