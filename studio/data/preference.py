"""Preference data: pairs (a prompt, a chosen and a rejected reply) for DPO, IPO, ORPO and
SimPO, and single judged replies (a prompt, a completion and a `label`) for KTO.

Canonical rows (what a dataset version of form `preference` or `kto` holds):

- preference: `{"prompt": str | [messages], "chosen": str, "rejected": str}`, and where known
  `chosen_model` / `rejected_model` (which model wrote each reply: pairs made in the studio);
- kto: `{"prompt": str | [messages], "completion": str, "label": bool}`.

A prompt is plain text (the model continues it) or a list of chat messages ending on a user
turn (the model's chat template renders it); the replies are the assistant's text. The common
shapes of published preference sets are read into these forms here, once, for both the JSONL
reader (`records`) and the importer (`ingest`):

- `prompt`/`chosen`/`rejected` as text;
- trl's conversational form: `prompt` a list of messages, `chosen`/`rejected` the assistant's
  message (or a list holding it);
- the implicit prompt: `chosen` and `rejected` whole conversations (lists of messages, or
  texts) that share their beginning, which is the prompt (Anthropic HH, UltraFeedback);
- a conversation (`messages` or `conversations`) with `chosen`/`rejected` replies beside it
  (LLaMA-Factory's and argilla's ranking sets);
- KTO's `prompt` + `completion` + `label`.
"""

from __future__ import annotations

import json

from studio.errors import InputError

PAIR_FORM = "preference"
KTO_FORM = "kto"
ROLES = ("system", "user", "assistant", "tool", "developer")
SHAREGPT_ROLES = {"human": "user", "gpt": "assistant", "model": "assistant", "bot": "assistant"}
TRUE_LABELS = {"true", "1", "yes", "good", "desirable", "chosen", "👍", "はい", "良い"}
FALSE_LABELS = {"false", "0", "no", "bad", "undesirable", "rejected", "👎", "いいえ", "悪い"}


def looks_like_pair(row: object) -> bool:
    return isinstance(row, dict) and "chosen" in row and "rejected" in row


def looks_like_kto(row: object) -> bool:
    return (
        isinstance(row, dict)
        and "label" in row
        and "completion" in row
        and "chosen" not in row
        and "messages" not in row
    )


def _loads(value):
    """A CSV or Parquet cell may hold a list of messages as JSON text."""
    if isinstance(value, str) and value.lstrip().startswith(("[", "{")):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _message(turn: object, key: str) -> dict:
    if not isinstance(turn, dict):
        raise ValueError(f"{key!r} must hold {{role, content}} messages")
    role = turn.get("role", SHAREGPT_ROLES.get(str(turn.get("from", "")).lower(), turn.get("from")))
    content = turn.get("content", turn.get("value"))
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r} in {key!r}")
    if not isinstance(content, str):
        raise ValueError(f"message content in {key!r} must be text")
    return {"role": role, "content": content}


def messages_of(value, key: str) -> list[dict] | None:
    """A list of messages (one message alone counts as a list of one), else None for text."""
    value = _loads(value)
    if isinstance(value, dict):
        value = [value]
    if isinstance(value, list):
        if not value:
            raise ValueError(f"{key!r} is an empty list")
        return [_message(turn, key) for turn in value]
    return None


def reply_text(value, key: str) -> str:
    """The text of one reply: a string, or the assistant's message (a list that holds exactly
    one assistant message, as trl's conversational form writes it)."""
    turns = messages_of(value, key)
    if turns is None:
        if not isinstance(value, str):
            raise ValueError(f"{key!r} must be text or the assistant's message")
        return value
    replies = [t for t in turns if t["role"] == "assistant"]
    if len(turns) != 1 or len(replies) != 1:
        raise ValueError(
            f"{key!r} must hold exactly one assistant message (it holds {len(turns)} "
            f"message(s), {len(replies)} from the assistant); put earlier turns in the prompt"
        )
    return replies[0]["content"]


def _prompt(value, key: str = "prompt") -> str | list[dict]:
    turns = messages_of(value, key)
    if turns is None:
        if not isinstance(value, str):
            raise ValueError(f"{key!r} must be text or a list of messages")
        if not value.strip():
            raise ValueError(f"{key!r} is empty")
        return value
    if turns[-1]["role"] == "assistant":
        raise ValueError(f"{key!r} ends on an assistant turn; the reply to choose is missing")
    return turns


def _implicit(chosen, rejected) -> tuple[str | list[dict], str, str]:
    """Whole conversations sharing their beginning: the shared part is the prompt."""
    c_turns, r_turns = messages_of(chosen, "chosen"), messages_of(rejected, "rejected")
    if c_turns is not None and r_turns is not None:
        shared = 0
        while shared < min(len(c_turns), len(r_turns)) and c_turns[shared] == r_turns[shared]:
            shared += 1
        while shared and c_turns[shared - 1]["role"] == "assistant":
            shared -= 1  # the choice is between two assistant turns
        if not shared:
            raise ValueError(
                "'chosen' and 'rejected' share no prompt turn and there is no 'prompt'"
            )
        return (
            c_turns[:shared],
            reply_text(c_turns[shared:], "chosen"),
            reply_text(r_turns[shared:], "rejected"),
        )
    if isinstance(chosen, str) and isinstance(rejected, str):
        n = 0
        while n < min(len(chosen), len(rejected)) and chosen[n] == rejected[n]:
            n += 1
        # Back to the start of the word both replies differ in, so that no reply begins
        # inside a word ("...Assistant: The" / "...Assistant: Th").
        while n and not chosen[n - 1].isspace() and chosen[n - 1] not in "：:。.!?」":
            n -= 1
        if not chosen[:n].strip():
            raise ValueError("'chosen' and 'rejected' share no prompt and there is no 'prompt'")
        return chosen[:n], chosen[n:], rejected[n:]
    raise ValueError("'chosen' and 'rejected' must both be texts or both be conversations")


def pair_row(row: dict, mapping: dict | None = None) -> dict:
    """One preference row in the canonical form; raises ValueError naming what is wrong.
    `mapping`: canonical field -> column (the importer's column mapping)."""
    m = {"prompt": "prompt", "chosen": "chosen", "rejected": "rejected"} | (mapping or {})
    chosen, rejected = row.get(m["chosen"]), row.get(m["rejected"])
    if chosen is None or rejected is None:
        raise ValueError("a preference row needs both 'chosen' and 'rejected'")
    prompt = row.get(m["prompt"]) if m.get("prompt") else None
    if prompt is None:  # a conversation beside the two replies, or an implicit prompt
        for key in ("messages", "conversations", "conversation", "history"):
            if row.get(key) is not None:
                prompt = row[key]
                break
    if prompt is None:
        prompt, chosen_text, rejected_text = _implicit(_loads(chosen), _loads(rejected))
    else:
        prompt = _prompt(prompt)
        chosen_text, rejected_text = reply_text(chosen, "chosen"), reply_text(rejected, "rejected")
    if not chosen_text.strip() or not rejected_text.strip():
        raise ValueError("'chosen' or 'rejected' is empty")
    out = {"prompt": prompt, "chosen": chosen_text, "rejected": rejected_text}
    for key in ("chosen_model", "rejected_model"):
        if isinstance(row.get(key), str):
            out[key] = row[key]
    return out


def as_label(value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in TRUE_LABELS:
        return True
    if text in FALSE_LABELS:
        return False
    raise ValueError(f"'label' must say whether the completion is good (true/false), got {value!r}")


def kto_row(row: dict, mapping: dict | None = None) -> dict:
    """One KTO row in the canonical form; raises ValueError naming what is wrong."""
    m = {"prompt": "prompt", "completion": "completion", "label": "label"} | (mapping or {})
    if row.get(m["prompt"]) is None or row.get(m["completion"]) is None:
        raise ValueError("a KTO row needs 'prompt', 'completion' and 'label'")
    completion = reply_text(row[m["completion"]], "completion")
    if not completion.strip():
        raise ValueError("'completion' is empty")
    return {
        "prompt": _prompt(row[m["prompt"]]),
        "completion": completion,
        "label": as_label(row.get(m["label"])),
    }


def is_chat(row: dict) -> bool:
    return isinstance(row.get("prompt"), list)


def prompt_messages(prompt: str | list[dict]) -> list[dict]:
    """A prompt as chat messages (a plain prompt is the user's one turn)."""
    return prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]


def prompt_text(prompt: str | list[dict]) -> str:
    """A prompt as one readable text (its last user turn for a chat prompt)."""
    if isinstance(prompt, str):
        return prompt
    users = [t["content"] for t in prompt if t["role"] == "user"]
    return users[-1] if users else prompt[-1]["content"]


def features(form: str, chat: bool):
    """The Parquet columns of a preference or KTO version."""
    import datasets

    string = datasets.Value("string")
    prompt = datasets.List({"role": string, "content": string}) if chat else string
    columns = {"id": string, "prompt": prompt}
    if form == PAIR_FORM:
        columns |= {
            "chosen": string,
            "rejected": string,
            "chosen_model": string,
            "rejected_model": string,
        }
    else:
        columns |= {"completion": string, "label": datasets.Value("bool")}
    return datasets.Features(columns)


# --- pairs made in the studio: the Compare grid's rows, marked ---------------------------
MARKS = ("1", "2", "=")


def comparison_prompt(comparison: dict, index: int) -> str | list[dict]:
    """The prompt of row `index` as the models were asked it: with the chat template (and
    the grid's system prompt) or as plain text."""
    prompt = comparison["prompts"][index]
    if not comparison.get("chat"):
        return prompt
    turns = [{"role": "user", "content": prompt}]
    if comparison.get("system"):
        turns.insert(0, {"role": "system", "content": comparison["system"]})
    return turns


def known_model(comparison: dict, model: str) -> None:
    """Refuse a model the comparison did not ask."""
    if model not in comparison["models"]:
        raise InputError(
            f"{model} is not in the comparison; its models are {', '.join(comparison['models'])}",
            code="model_not_compared",
            model=model,
            models=", ".join(comparison["models"]),
        )


def two_models(first: str, second: str) -> None:
    """Refuse a pair whose two replies would come from one model."""
    if first == second:
        raise InputError(
            "reply 1 and reply 2 come from the same model; choose two models",
            code="same_models_compared",
        )


def pairs_from_marks(comparison: dict, marks: list[dict]) -> tuple[list[dict], dict]:
    """Preference rows from a Compare grid (`Comparison.to_dict()`) and the user's marks,
    each `{"prompt_index": i, "chosen": MODEL, "rejected": MODEL}` or `{"prompt_index": i,
    "tie": true}` / `{"prompt_index": i, "skip": true}`. Ties, skipped rows, rows whose
    reply failed and pairs of identical replies are not written; the counts say how many
    of each there were. A mark that does not fit the grid is refused (`InputError`)."""
    cells = {(c["model"], c["prompt_index"]): c for c in comparison["cells"]}
    rows, counts = [], {"marked": 0, "pairs": 0, "ties": 0, "skipped": 0, "unusable": 0}
    seen = set()
    for mark in marks:
        try:
            row = _marked_row(comparison, cells, mark, counts, seen)
        except (ValueError, KeyError, TypeError) as exc:
            reason = exc.args[0] if exc.args else exc
            raise InputError(
                f"a mark does not fit the comparison: {reason}",
                code="bad_preference_mark",
                error=str(reason),
            ) from None
        if row is not None:
            rows.append(row)
    counts["pairs"] = len(rows)
    return rows, counts


def _marked_row(comparison: dict, cells: dict, mark: dict, counts: dict, seen: set):
    """The row one mark writes, or None (a tie, a skip, an unusable pair: counted)."""
    index = int(mark["prompt_index"])
    if not 0 <= index < len(comparison["prompts"]):
        raise ValueError(f"prompt {index + 1} is not in the comparison")
    counts["marked"] += 1
    if mark.get("tie"):
        counts["ties"] += 1
        return None
    if mark.get("skip") or not mark.get("chosen"):
        counts["skipped"] += 1
        return None
    chosen, rejected = mark["chosen"], mark["rejected"]
    if chosen == rejected:
        raise ValueError(f"prompt {index + 1}: the chosen and rejected model are the same")
    a, b = cells.get((chosen, index)), cells.get((rejected, index))
    if a is None or b is None:
        missing = chosen if a is None else rejected
        raise ValueError(f"prompt {index + 1}: {missing} has no reply in the comparison")
    key = (index, chosen, rejected)
    if (
        key in seen
        or a.get("error")
        or b.get("error")
        or not a["text"].strip()
        or not b["text"].strip()
        or a["text"].strip() == b["text"].strip()
    ):
        counts["unusable"] += 1
        return None
    seen.add(key)
    return {
        "prompt": comparison_prompt(comparison, index),
        "chosen": a["text"],
        "rejected": b["text"],
        "chosen_model": chosen,
        "rejected_model": rejected,
    }


def prefer_model(comparison: dict, better: str, worse: str) -> list[dict]:
    """Marks that prefer one model's reply over another's on every prompt (the fine-tune
    over its base, say): `python -m studio data preference --prefer A --over B`."""
    for model in (better, worse):
        known_model(comparison, model)
    two_models(better, worse)
    return [
        {"prompt_index": i, "chosen": better, "rejected": worse}
        for i in range(len(comparison["prompts"]))
    ]


def save_pairs(ws, name: str, rows: list[dict], *, source: str, settings: dict | None = None,
               counts: dict | None = None):  # fmt: skip
    """Write preference rows as the next version of dataset `name` (form `preference`)."""
    from studio.data.records import RecordError
    from studio.data.store import hf_datasets, write_version

    if not rows:
        raise RecordError("no pair to save: mark the better reply of at least one row")
    chat = {is_chat(r) for r in rows}
    if len(chat) > 1:
        raise RecordError("the pairs mix chat and plain-text prompts; save them separately")
    datasets = hf_datasets()
    table = [
        {
            "id": f"{name}-{i:07d}",
            "prompt": r["prompt"],
            "chosen": r["chosen"],
            "rejected": r["rejected"],
            "chosen_model": r.get("chosen_model") or "",
            "rejected_model": r.get("rejected_model") or "",
        }
        for i, r in enumerate(rows, 1)
    ]
    data = datasets.Dataset.from_list(table, features=features(PAIR_FORM, chat.pop()))
    return write_version(
        ws,
        name,
        data,
        format=PAIR_FORM,
        operation="preference_pairs",
        settings=settings or {},
        counts={"rows": len(table), **(counts or {})},
        source=source,
    )
