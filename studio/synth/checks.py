"""A generator's reply turned into pairs, and every pair checked before it becomes data.

Parsing reads the labelled lines the template asked for ("質問: …" / "回答: …", "User: …" /
"Assistant: …"; a number after the label, a full-width colon and Markdown bold are
tolerated; a line without a label continues the field before it). Each pair then passes
the checks below or is rejected with the first reason it fails, which the report counts and
shows with samples:

- `too_long`: the passage's prompt leaves no room for the reply in the model's context (it
  is not sent; cut smaller passages);
- `unparsable`: the reply holds no complete pair in the asked form;
- `cut_off`: the last pair of a reply that ran into the token limit (its answer may be cut);
- `empty_question`, `empty_answer`;
- `end_marker`: an end marker typed as text (`</s>`, `<|im_end|>`, ...);
- `copies_prompt`: the question or answer repeats the template's instructions;
- `wrong_language`: not in the template's language;
- `not_grounded`: too little of the answer is found in the passage (character bigrams for
  Japanese, words for English);
- `duplicate`: the same question twice for one passage.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from studio.generate import LITERAL_END_MARKERS
from studio.synth.templates import Template

REASONS = (
    "too_long",
    "unparsable",
    "cut_off",
    "empty_question",
    "empty_answer",
    "end_marker",
    "copies_prompt",
    "wrong_language",
    "not_grounded",
    "duplicate",
)
COPY_SPAN = 16  # characters of the instructions that, found in a pair, make it a copy
JAPANESE_SHARE = 0.3  # least share of Japanese characters in a Japanese pair's text
LATIN_SHARE = 0.8  # least share of Latin letters among the letters of an English pair


@dataclass
class Pair:
    """One generated example: qa (`turns` = [question, answer]) or chat (user and assistant
    turns alternating, starting with the user)."""

    turns: list[str]
    reason: str | None = None
    notes: dict = field(default_factory=dict)

    @property
    def question(self) -> str:
        return self.turns[0] if self.turns else ""

    @property
    def answers(self) -> list[str]:
        return self.turns[1::2]

    def messages(self) -> list[dict]:
        roles = ("user", "assistant")
        return [{"role": roles[i % 2], "content": text} for i, text in enumerate(self.turns)]


def _label_pattern(labels: tuple[str, ...]) -> re.Pattern:
    names = "|".join(re.escape(x) for x in sorted(labels, key=len, reverse=True))
    # "質問:", "質問1：", "**Question 2:**", "- Answer:", "Q: "-style labels are the template's
    return re.compile(
        rf"^\s*(?:[-*•]\s*)?(?:\*\*)?({names})\s*(?:\d+|[（(]?\d+[)）]?)?\s*(?:\*\*)?\s*[:：]"
        rf"\s*(?:\*\*)?\s*",
        re.IGNORECASE,
    )


def fields(text: str, labels: tuple[str, ...]) -> list[tuple[str, str]]:
    """(label, text) for each labelled field of a reply, in order."""
    pattern = _label_pattern(labels)
    canonical = {x.lower(): x for x in labels}
    found: list[list[str]] = []
    for line in text.splitlines():
        m = pattern.match(line)
        if m:
            found.append([canonical[m.group(1).lower()], line[m.end() :].strip()])
        elif found:
            found[-1][1] = f"{found[-1][1]}\n{line.strip()}".strip()
    return [(label, value.strip()) for label, value in found]


def parse(text: str, template: Template) -> list[Pair]:
    """The pairs a reply holds. qa: each question with the answer after it; chat: one
    conversation from the first user turn on, turns alternating (a repeated speaker's lines
    are joined), ending with the assistant."""
    ask, answer = template.roles
    found = fields(text, (ask, answer))
    if template.form == "qa":
        pairs, question = [], None
        for label, value in found:
            if label == ask:
                question = value
            elif question is not None:
                pairs.append(Pair([question, value]))
                question = None
        return pairs
    turns: list[list[str]] = []
    for label, value in found:
        if not turns and label != ask:
            continue
        if turns and turns[-1][0] == label:
            turns[-1][1] = f"{turns[-1][1]}\n{value}".strip()
        else:
            turns.append([label, value])
    if turns and turns[-1][0] == ask:
        turns.pop()
    return [Pair([v for _, v in turns])] if len(turns) >= 2 else []


def normalize(text: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip().lower()


def _grams(text: str, language: str) -> set[str]:
    text = normalize(text)
    if language == "en":
        return set(re.findall(r"[a-z0-9]{3,}", text))
    chars = [c for c in text if c.isalnum()]
    return {a + b for a, b in zip(chars, chars[1:], strict=False)}


def grounding(answer: str, passage: str, language: str) -> float:
    """The share of the answer's n-grams (Japanese: character bigrams; English: words of
    three letters or more) that occur in the passage; 1.0 for an answer without any."""
    grams = _grams(answer, language)
    if not grams:
        return 1.0
    return len(grams & _grams(passage, language)) / len(grams)


def language_ok(text: str, language: str) -> bool:
    from studio.data.filters import char_counts

    nonspace, japanese, _ = char_counts(text)
    letters = sum(1 for c in text if c.isalpha())
    if language == "ja":
        return nonspace == 0 or japanese / nonspace >= JAPANESE_SHARE
    latin = sum(1 for c in text if c.isascii() and c.isalpha())
    return letters == 0 or (japanese == 0 and latin / letters >= LATIN_SHARE)


def _copies(text: str, instruction_spans: set[str]) -> bool:
    text = normalize(text)
    return any(
        text[i : i + COPY_SPAN] in instruction_spans for i in range(len(text) - COPY_SPAN + 1)
    )


def instruction_spans(instructions: str) -> set[str]:
    text = normalize(instructions)
    return {text[i : i + COPY_SPAN] for i in range(len(text) - COPY_SPAN + 1)}


def check(pair: Pair, passage: str, template: Template, spans: set[str]) -> str | None:
    """The first reason `pair` is rejected, or None; notes the grounding share."""
    if not pair.question.strip():
        return "empty_question"
    if any(not a.strip() for a in pair.answers):
        return "empty_answer"
    joined = "\n".join(pair.turns)
    if any(marker in joined for marker in LITERAL_END_MARKERS):
        return "end_marker"
    if _copies(joined, spans):
        return "copies_prompt"
    if not language_ok(joined, template.language):
        return "wrong_language"
    share = grounding("\n".join(pair.answers), passage, template.language)
    pair.notes["grounding"] = round(share, 3)
    if share < template.grounding:
        return "not_grounded"
    return None


def judge(
    reply: str, passage: str, template: Template, spans: set[str], *, cut: bool
) -> tuple[list[Pair], list[Pair]]:
    """(accepted, rejected) pairs of one reply; a reply without a pair is one rejected pair
    holding the reply's text, reason `unparsable`."""
    pairs = parse(reply, template)
    if not pairs:
        return [], [Pair([reply.strip()], reason="unparsable")]
    if cut:
        pairs[-1].reason = "cut_off"
    seen: set[str] = set()
    for pair in pairs:
        if pair.reason:
            continue
        pair.reason = check(pair, passage, template, spans)
        key = normalize(pair.question)
        if pair.reason is None and key in seen:
            pair.reason = "duplicate"
        seen.add(key)
    return [p for p in pairs if p.reason is None], [p for p in pairs if p.reason]
