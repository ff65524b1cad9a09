"""Chat with a model: saved personas (system prompts), replies that stop on every end-of-turn
id, and conversations kept as `messages` rows, the form the trainer reads, so a good chat
can become training data.

The conversation is a list of `{"role", "content"}` dicts (what Gradio's Chatbot holds);
`reply()` streams the assistant's next turn for it.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from studio.errors import StudioError
from studio.fsutil import atomic_write_json, atomic_write_text, read_json
from studio.generate import GenerationResult, GenerationSettings, stream

PERSONAS_FILE = "chat/personas.json"
MAX_PERSONA_NAME = 60

# Bundled personas; a user's saved ones (same name) take their place.
DEFAULT_PERSONAS = {
    "お嬢様 / Ojousama (demo)": "上品なお嬢様言葉で話してください。",
    "丁寧なアシスタント / Polite assistant": "あなたは丁寧で正確なアシスタントです。"
    "質問に簡潔に答えてください。",
    "なし / None": "",
}


class ChatError(StudioError, ValueError):
    """A chat request that cannot be served; the message says what to do."""


def personas(ws) -> dict[str, str]:
    """Persona name -> system prompt: the bundled ones, then the user's (which win)."""
    saved = read_json(ws.root / PERSONAS_FILE, default={}) or {}
    if not isinstance(saved, dict):
        saved = {}
    return DEFAULT_PERSONAS | {str(k): str(v) for k, v in saved.items()}


def save_persona(ws, name: str, system: str) -> dict[str, str]:
    name = " ".join((name or "").split())
    if not name:
        raise ChatError("Give the persona a name.")
    if len(name) > MAX_PERSONA_NAME:
        raise ChatError(f"A persona name has at most {MAX_PERSONA_NAME} characters.")
    path = ws.root / PERSONAS_FILE
    saved = read_json(path, default={}) or {}
    saved = saved if isinstance(saved, dict) else {}
    saved[name] = system or ""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, saved)
    return personas(ws)


def delete_persona(ws, name: str) -> dict[str, str]:
    path = ws.root / PERSONAS_FILE
    saved = read_json(path, default={}) or {}
    if not isinstance(saved, dict) or name not in saved:
        raise ChatError(f"{name!r} is not a saved persona (bundled ones cannot be deleted).")
    del saved[name]
    atomic_write_json(path, saved)
    return personas(ws)


def plain_messages(history: list) -> list[dict]:
    """A Chatbot history as plain `{"role", "content"}` turns (text only)."""
    out = []
    for m in history or []:
        if not isinstance(m, dict) or m.get("role") not in {"user", "assistant", "system"}:
            continue
        content = m.get("content")
        if isinstance(content, list):  # Gradio may hold content as a list of parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if isinstance(content, str):
            out.append({"role": m["role"], "content": content})
    return out


def reply(
    loaded,
    history: list,
    message: str,
    settings: GenerationSettings,
    *,
    system: str | None = None,
) -> Iterator[str | GenerationResult]:
    """Stream the assistant's answer to `message` after `history`: the text so far, then
    the finished result (whose `warnings` say if it ran into the limit or typed an end
    marker as text)."""
    if not (message or "").strip():
        raise ChatError("Type a message first.")
    if not getattr(loaded.tokenizer, "chat_template", None):
        raise ChatError(
            f"{loaded.source.name} has no chat template, so it cannot chat. Pick a chat model, "
            "or give it a template in the Inspect tab."
        )
    messages = plain_messages(history) + [{"role": "user", "content": message}]
    yield from stream(loaded, settings=settings, system=system or None, messages=messages)


def conversation_row(history: list, system: str | None = None) -> dict:
    """One training row in messages form; the system prompt first when there is one."""
    turns = plain_messages(history)
    if not any(m["role"] == "assistant" for m in turns):
        raise ChatError("The conversation has no reply yet; nothing to export.")
    if system and not any(m["role"] == "system" for m in turns):
        turns.insert(0, {"role": "system", "content": system})
    return {"messages": turns}


def export_jsonl(rows: list[dict], folder: Path | None = None) -> Path:
    """Write conversations as JSON Lines (one `{"messages": [...]}` per line) for download."""
    folder = Path(folder or tempfile.mkdtemp(prefix="chat-"))
    path = folder / f"chat-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def save_as_dataset(ws, rows: list[dict], name: str = "chats"):
    """Register conversations as a new version of a workspace dataset (messages form), ready
    for the Inspect and Train tabs."""
    from studio.data.store import hf_datasets, write_version

    name = re.sub(r"\s+", "-", (name or "").strip()) or "chats"
    data = hf_datasets().Dataset.from_list(rows)
    return write_version(
        ws, name[:60], data, format="messages", operation="chat", source="chat tab"
    )


def preference_pair(
    history_a: list,
    history_b: list,
    model_a: str,
    model_b: str,
    choice: str,
    system: str | None = None,
) -> dict:
    """The last turn of a chat sent to two models as a preference row (`data.preference`):
    the prompt is the conversation before the replies (model A's, with the system prompt
    first), `choice` "1" prefers model A's reply, "2" model B's; "=" (a tie) gives the row
    with `"tie": True` (model A's reply as `chosen`), which is not a pair to write."""
    if choice not in ("1", "2", "="):
        raise ChatError(f"choose 1, 2 or =, not {choice!r}")
    turns_a, turns_b = plain_messages(history_a), plain_messages(history_b)
    if (
        not model_a
        or not model_b
        or len(turns_a) < 2
        or len(turns_b) < 2
        or turns_a[-1]["role"] != "assistant"
        or turns_b[-1]["role"] != "assistant"
        or not turns_a[-1]["content"].strip()
        or not turns_b[-1]["content"].strip()
    ):
        raise ChatError(
            "Both models must answer the same message before one reply can be chosen.",
            code="chat_pair_incomplete",
        )
    if turns_a[-2] != turns_b[-2] or turns_a[-2]["role"] != "user":
        raise ChatError(
            "The two models' last replies answer different messages; send one message to both.",
            code="chat_pair_mismatch",
        )
    reply_a, reply_b = turns_a[-1]["content"], turns_b[-1]["content"]
    if choice != "=" and reply_a.strip() == reply_b.strip():
        raise ChatError(
            "The two replies are the same; there is nothing to choose between.",
            code="chat_pair_identical",
        )
    prompt = turns_a[:-1]
    if system and not any(m["role"] == "system" for m in prompt):
        prompt.insert(0, {"role": "system", "content": system})
    (chosen, chosen_model), (rejected, rejected_model) = (
        ((reply_a, model_a), (reply_b, model_b))
        if choice in ("1", "=")
        else ((reply_b, model_b), (reply_a, model_a))
    )
    return {
        "prompt": prompt,
        "chosen": chosen,
        "rejected": rejected,
        "chosen_model": chosen_model,
        "rejected_model": rejected_model,
    } | ({"tie": True} if choice == "=" else {})
