"""An Ollama `Modelfile` for an exported GGUF: `FROM` the file, a `TEMPLATE` that writes the
conversation exactly as the run's chat template did, and a `PARAMETER stop` line for every
end-of-turn string, so the model stops where it learned to.

Ollama's templates are Go templates, not Jinja. The training template is taken apart by
rendering it with marker contents (a user turn, an assistant turn, a system turn, the
generation prompt) and reading the text around each marker; the pieces are then put back as a
Go template, and `template_matches` renders conversations both ways (Jinja, and the pieces
the Go template joins) to prove they agree. BOS is left out of the template when the GGUF adds
it itself (Ollama would otherwise send it twice).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from studio.errors import StudioError

MARK = {
    "system": "QZSYSTEMQZ",
    "user": "QZUSERONEQZ",
    "assistant": "QZASSISTANTQZ",
    "user2": "QZUSERTWOQZ",
}


class TemplateShapeError(StudioError, ValueError):
    """The chat template cannot be written as an Ollama template (it is not a sequence of
    turns with fixed text around each)."""


@dataclass
class Parts:
    start: str  # before the first turn, without a system message (a default system prompt too)
    system_before: str  # before the system text, when there is one
    system_after: str
    user_before: str
    user_after: str
    assistant_before: str
    assistant_after: str
    generation: str  # what opens the assistant's reply

    def render(self, messages: list[dict], *, generation: bool = True) -> str:
        """The text the Go template writes for `messages` (what `template_matches` checks)."""
        system = next((m["content"] for m in messages if m["role"] == "system"), None)
        out = [self.system_before + system + self.system_after if system else self.start]
        for m in messages:
            if m["role"] == "user":
                out.append(self.user_before + m["content"] + self.user_after)
            elif m["role"] == "assistant":
                out.append(self.assistant_before + m["content"] + self.assistant_after)
        if generation:
            out.append(self.generation)
        return "".join(out)


def _render(tokenizer, messages: list[dict], generation: bool) -> str:
    from studio.models.info import apply_chat_template

    return apply_chat_template(
        tokenizer, messages, tokenize=False, add_generation_prompt=generation
    )


def _between(text: str, after: str | None, before: str | None) -> str:
    start = 0 if after is None else text.index(after) + len(after)
    end = len(text) if before is None else text.index(before, start)
    return text[start:end]


def _specials(tokenizer) -> list[str]:
    named = list(getattr(tokenizer, "all_special_tokens", []) or [])
    added = [t for t in (getattr(tokenizer, "get_added_vocab", dict)() or {})]
    return [t for t in dict.fromkeys(named + added) if len(t) > 1]


def _common(first: str, second: str, specials: list[str]) -> str:
    """The longest common start of two strings that does not end inside a special token
    (`<|end|>` then `<|endoftext|>` or `<|user|>` share `<|`, which is no piece of a turn)."""
    cut = len(os.path.commonprefix([first, second]))
    for text in (first, second):
        for token in specials:
            at = text.find(token)
            while at != -1 and at < cut:
                if at < cut < at + len(token):
                    cut = at
                at = text.find(token, at + 1)
    return first[:cut]


def template_parts(tokenizer, *, strip_bos: bool) -> Parts:
    """The training template taken apart into the text around each turn."""
    u, a, u2, s = MARK["user"], MARK["assistant"], MARK["user2"], MARK["system"]
    user = [{"role": "user", "content": u}]
    turns = user + [{"role": "assistant", "content": a}, {"role": "user", "content": u2}]
    try:
        full = _render(tokenizer, turns, True)
        one = _render(tokenizer, user, True)
        one_closed = _render(tokenizer, user, False)
        pair = _render(tokenizer, turns[:2], False)
        with_system = _render(tokenizer, [{"role": "system", "content": s}] + user, True)
    except Exception as exc:  # noqa: BLE001 - a template may raise anything (raise_exception)
        raise TemplateShapeError(f"the chat template could not be rendered: {exc}") from exc
    try:
        # A closed conversation may end with more than the turn (Phi-3 adds EOS): the turn's
        # own closing is what the closed and the continued renderings have in common.
        after_user = _between(one, u, None)
        specials = _specials(tokenizer)
        user_after = _common(_between(one_closed, u, None), after_user, specials)
        generation = after_user[len(user_after) :]
        assistant_before = _between(full, u, a)[len(user_after) :]
        between = _between(full, a, u2)
        assistant_after = _common(_between(pair, a, None), between, specials)
        user_before = between[len(assistant_after) :]
        head = _between(full, None, u)
        if not head.endswith(user_before):
            raise TemplateShapeError("the first user turn is written differently from later ones")
        start = head[: len(head) - len(user_before)]
        system_head = _between(with_system, None, u)[: -len(user_before) or None]
        system_before = _between(system_head, None, s)
        system_after = _between(system_head, s, None)
    except ValueError as exc:
        raise TemplateShapeError(f"the chat template drops or reorders turns ({exc})") from exc
    bos = getattr(tokenizer, "bos_token", None)
    if strip_bos and bos:
        start = start.removeprefix(bos)
        system_before = system_before.removeprefix(bos)
    return Parts(start, system_before, system_after, user_before, user_after,
                 assistant_before, assistant_after, generation)  # fmt: skip


SAMPLE_CONVERSATIONS = (
    [{"role": "user", "content": "こんにちは"}],
    [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "an answer\nin two lines"},
        {"role": "user", "content": "次の質問です。"},
    ],
    [{"role": "system", "content": "丁寧に答えてください。"}, {"role": "user", "content": "hi"}],
    [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "1+1?"},
        {"role": "assistant", "content": "2"},
        {"role": "user", "content": "2+2?"},
    ],
)


def template_matches(tokenizer, parts: Parts, *, strip_bos: bool) -> list[int]:
    """Indices of the sample conversations the pieces write differently from the Jinja
    template (empty when the Ollama template reproduces training exactly)."""
    bos = getattr(tokenizer, "bos_token", None) if strip_bos else None
    bad = []
    for i, messages in enumerate(SAMPLE_CONVERSATIONS):
        try:
            want = _render(tokenizer, list(messages), True)
        except Exception:  # noqa: BLE001 - e.g. a template that refuses a system turn
            continue
        if bos:
            want = want.removeprefix(bos)
        if parts.render(list(messages)) != want:
            bad.append(i)
    return bad


def _go(text: str) -> str:
    """Literal text inside a Go template (`{{` would open an action)."""
    return text.replace("{{", '{{ "{{" }}')


def go_template(parts: Parts) -> str:
    p = {k: _go(v) for k, v in parts.__dict__.items()}
    return (
        f"{{{{- if .System }}}}{p['system_before']}{{{{ .System }}}}{p['system_after']}"
        f"{{{{- else }}}}{p['start']}{{{{- end }}}}"
        "{{- range .Messages }}"
        f'{{{{- if eq .Role "user" }}}}{p["user_before"]}{{{{ .Content }}}}{p["user_after"]}'
        f'{{{{- else if eq .Role "assistant" }}}}{p["assistant_before"]}{{{{ .Content }}}}'
        f"{p['assistant_after']}"
        "{{- end }}{{- end }}"
        f"{p['generation']}"
    )


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def modelfile(gguf_name: str, stop_strings: list[str], parts: Parts | None, *,
              system: str | None = None) -> str:  # fmt: skip
    lines = [f"FROM ./{gguf_name}", ""]
    if parts is not None:
        lines += [f'TEMPLATE """{go_template(parts)}"""', ""]
    if system:
        lines += [f'SYSTEM """{system}"""', ""]
    lines += [f"PARAMETER stop {_quoted(s)}" for s in stop_strings]
    return "\n".join(lines) + "\n"


def ollama_tag(name: str) -> str:
    """A model name Ollama accepts (lowercase letters, digits, `-`, `_`, `.`), made from what
    the user typed: "My Demo" becomes "my-demo"."""
    import re

    tag = re.sub(r"[^a-z0-9._-]+", "-", (name or "").strip().lower()).strip("-.")
    if not tag:
        raise StudioError(f"{name!r} cannot be an Ollama model name", code="ollama_bad_name")
    return tag[:80]


def ollama_binary() -> str | None:
    return shutil.which("ollama")


def create(name: str, modelfile_path: Path, *, timeout: float = 1800) -> str:
    """`ollama create NAME -f Modelfile` in the Modelfile's folder (its FROM is relative)."""
    binary = ollama_binary()
    if binary is None:
        raise StudioError(
            "ollama is not on this machine's PATH; install it from ollama.com, then run "
            f"`ollama create {name} -f {modelfile_path}`",
            code="ollama_missing",
        )
    done = subprocess.run(
        [binary, "create", name, "-f", str(modelfile_path)],
        cwd=modelfile_path.parent,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode:
        raise StudioError(
            f"ollama create failed: {(done.stderr or done.stdout).strip()[-500:]}",
            code="ollama_failed",
        )
    return (done.stdout or "").strip()
