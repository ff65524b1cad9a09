"""Mechanical fixes for diagnostics: new settings, or a new dataset version. Never in place.

A settings fix returns changed `EncodingSettings` (saved as a new profile by the caller); a
data fix writes a repaired copy of the rows as a new dataset version. The original data
and the original settings are left as they were.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from studio.data.records import iter_records
from studio.errors import InputError
from studio.labels.diagnose import Diagnostic
from studio.labels.encode import PAD_TOKENS, EncodingSettings, Tokens
from studio.labels.spans import plan_for

# A ChatML template with generation markers around what the assistant writes (its reply
# and the end-of-turn token), for tokenizers that know <|im_start|>/<|im_end|>.
CHATML_MARKED = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}"
    "{% else %}{{ message['content'] + '<|im_end|>' + '\\n' }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# Markers that separate a prompt from its answer in plain-text SFT data.
RESPONSE_MARKERS = (
    "[/INST]",
    "### Response:",
    "### 応答:",
    "### 回答:",
    "<|assistant|>",
    "ASSISTANT:",
    "Assistant:",
    "回答:",
    "Answer:",
)
LENGTH_STEP = 64


@dataclass
class Fix:
    code: str  # the diagnostic it answers
    kind: str  # "settings" | "data"
    action: str  # locale key suffix: inspect.action_<action>
    changes: dict = field(default_factory=dict)  # settings changes (kind "settings")
    params: dict = field(default_factory=dict)  # for the message

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def dedicated_pad(tok: Tokens) -> str | None:
    """A token to pad with that is neither EOS nor an end-of-turn token."""
    tokenizer = tok.tokenizer
    for candidate in (tokenizer.pad_token, tokenizer.unk_token, *PAD_TOKENS, "<unk>"):
        if not candidate:
            continue
        token_id = tokenizer.get_vocab().get(candidate)
        if token_id is not None and token_id not in tok.end_ids and token_id != tok.bos_id:
            return candidate
    return None


def response_marker(examples: list[tuple[int, dict]]) -> str | None:
    texts = [data["text"] for _, data in examples if "text" in data]
    if not texts:
        return None
    for marker in RESPONSE_MARKERS:
        if all(marker in text for text in texts):
            return marker
    return None


def needed_length(lengths, context_length: int | None) -> int:
    longest = int(max(lengths)) if lengths is not None and len(lengths) else 0
    wanted = -(-longest // LENGTH_STEP) * LENGTH_STEP
    return min(wanted, context_length) if context_length else wanted


def suggest(
    diagnostics: list[Diagnostic],
    tok: Tokens,
    settings: EncodingSettings,
    *,
    inference_template: str | None = None,
    lengths=None,
    context_length: int | None = None,
    examples: list[tuple[int, dict]] | None = None,
) -> list[Fix]:
    """One fix per diagnostic where the fix is mechanical."""
    codes = {d.code: d for d in diagnostics}
    fixes: list[Fix] = []
    # The model's own template, if assistant turns can be found in it: the way back to it
    # must not lead to template_not_marked again. (Rendering it is only worth it when a
    # template code asks.)
    own_template_works = (
        bool(inference_template)
        and bool({"template_drift", "template_not_marked"} & set(codes))
        and plan_for(tok.tokenizer, inference_template, tok.spans.ends).found
    )
    pad = dedicated_pad(tok)

    def add(code, kind, action, changes=None, **params):
        fixes.append(Fix(code, kind, action, changes or {}, params))

    if "double_bos" in codes or "template_drift" in codes:
        code = "double_bos" if "double_bos" in codes else "template_drift"
        if settings.add_special_tokens == "yes":
            add(code, "settings", "special_auto", {"add_special_tokens": "auto"})
        elif code == "double_bos":
            add(code, "settings", "special_no", {"add_special_tokens": "no"})
        elif settings.chat_template and own_template_works:
            add(code, "settings", "own_template", {"chat_template": None})
    if "template_not_marked" in codes:
        if settings.chat_template and own_template_works:
            add("template_not_marked", "settings", "own_template", {"chat_template": None})
        elif "<|im_start|>" in (tok.template or "") and "<|im_start|>" in tok.tokenizer.get_vocab():
            # Only a ChatML template is replaced by ChatML: other families have their own.
            add(
                "template_not_marked",
                "settings",
                "chatml_template",
                {"chat_template": CHATML_MARKED},
            )
    pad_codes = [c for c in ("eos_masked", "pad_is_eos") if c in codes]
    if pad_codes and pad is not None:
        add(
            pad_codes[0],
            "settings",
            "dedicated_pad",
            {"pad_token": pad, "mask_pad_token_id": False},
            token=pad,
        )
    if "eos_missing" in codes and not settings.add_eos:
        add("eos_missing", "settings", "add_eos", {"add_eos": True})
    if "response_truncated" in codes:
        wanted = needed_length(lengths, context_length)
        if wanted > settings.max_length:
            add(
                "response_truncated",
                "settings",
                "max_length",
                {"max_length": wanted},
                max_length=wanted,
            )
        elif settings.truncation_side == "right" and settings.stage == "sft":
            add("response_truncated", "settings", "truncate_left", {"truncation_side": "left"})
    if "packing_cross_contamination" in codes:
        add("packing_cross_contamination", "settings", "isolated", {"packing": "isolated"})
    if "prompt_trained" in codes and codes["prompt_trained"].params.get("reason") == "text_rows":
        marker = response_marker(examples or [])
        if marker:
            add(
                "prompt_trained",
                "settings",
                "response_template",
                {"response_template": marker},
                marker=marker,
            )

    def found_literals(*names) -> list[str]:
        found = set()
        for c in names:
            if c in codes:
                found |= set(codes[c].params.get("literals", [codes[c].params.get("literal")]))
        return sorted(found - {None})

    literals = found_literals("eos_as_text", "special_token_in_text")
    trailing = found_literals("foreign_end_marker")
    empty = codes.get("no_trained_tokens")
    drop = bool(empty and empty.params.get("reasons", {}).get("no_assistant_turn"))
    if literals or trailing or drop:
        code = next(
            (
                c
                for c in ("eos_as_text", "special_token_in_text", "foreign_end_marker")
                if c in codes
            ),
            "no_trained_tokens",
        )
        add(
            code,
            "data",
            "repair_data",
            literals=literals,
            trailing=trailing,
            drop_unanswered=drop,
            markers=", ".join(literals + trailing) or "-",
        )
    return fixes


def apply_settings(settings: EncodingSettings, fixes: list[Fix]) -> EncodingSettings:
    changes: dict = {}
    for fix in fixes:
        if fix.kind == "settings":
            changes.update(fix.changes)
    return settings.replace(**changes)


def _strip(text: str, literals: list[str], trailing: list[str] = (), written: bool = True) -> str:
    new = text
    for literal in literals:
        new = new.replace(literal, "")
    if written:  # another family's end marker is removed only where it ends the text
        ended = True
        while ended:
            ended = False
            for literal in trailing:
                if new.rstrip().endswith(literal):
                    new = new.rstrip()[: -len(literal)]
                    ended = True
    return new.rstrip() if new != text else new


def repair_row(data: dict, fmt: str, literals: list[str], trailing: list[str] = ()) -> dict:
    """A copy of the row with typed end markers removed (`trailing` ones only at the end of
    what the model writes)."""
    row = json.loads(json.dumps(data))
    if fmt == "text":
        row["text"] = _strip(row["text"], literals, trailing)
    elif fmt == "prompt_completion":
        row["prompt"] = _strip(row["prompt"], literals, trailing, written=False)
        row["completion"] = _strip(row["completion"], literals, trailing)
    else:
        for message in row["messages"]:
            written = message["role"] == "assistant"
            message["content"] = _strip(message["content"], literals, trailing, written)
    return row


def repair_dataset(
    ws, version, literals: list[str], *, drop_unanswered: bool = True, trailing: list[str] = ()
) -> object:
    """Write a repaired copy of a dataset version as its next version."""
    from studio.data.records import dataset_file
    from studio.data.registry import add_version

    literals = [lit for lit in literals if lit]
    trailing = [lit for lit in trailing if lit]
    kept = dropped = changed = 0
    with tempfile.TemporaryDirectory(dir=ws.root) as tmp:
        out = Path(tmp) / "data.jsonl"
        with open(out, "w", encoding="utf-8") as fh:
            for record in iter_records(dataset_file(version)):
                data = record.data
                if (
                    drop_unanswered
                    and record.format == "messages"
                    and not any(m["role"] == "assistant" for m in data["messages"])
                ):
                    dropped += 1
                    continue
                fixed = repair_row(data, record.format, literals, trailing)
                changed += fixed != data
                fh.write(json.dumps(fixed, ensure_ascii=False) + "\n")
                kept += 1
        if kept == 0:
            raise InputError("the repair would leave no rows")
        return add_version(
            ws.datasets,
            version.name,
            {"data.jsonl": out},
            format=version.format,
            operation="repair-labels",
            parent=version.version,
            settings={
                "removed_literals": literals,
                "removed_trailing": trailing,
                "dropped_rows_without_answer": dropped,
                "rows_changed": changed,
            },
            source=f"{version.name}/{version.version}",
        )
