"""Chat templates from users, tried in a process the app can abandon before it uses them.

A chat template is a program (Jinja). One that loops for ever (`{% for i in range(100000) %}
{% for j in range(100000) %}`) or writes gigabytes would hang the endpoint that renders it for
every session of the app and keep a core busy until a restart: Jinja's sandbox bounds what a
template may touch, not how long it runs. So the app (`guard_templates()`, called at start)
renders each new template once on a short conversation in a child process with a time and an
output limit, and refuses it when the child does not finish; the verdict is kept per
template. The command line does not do this: there the user runs their own template.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading

PROBE_SECONDS = 20.0
MAX_OUTPUT_CHARS = 1 << 20
PROBE = [
    {"role": "system", "content": "You answer briefly."},
    {"role": "user", "content": "What is 2 + 2?"},
    {"role": "assistant", "content": "4."},
    {"role": "user", "content": "And 3 + 3?"},
]
_CHILD = """
import json, sys
from transformers.utils.chat_template_utils import render_jinja_template
job = json.loads(sys.stdin.read())
longest = 0
for prompt in (False, True):
    try:
        out, _ = render_jinja_template(
            [job["messages"]], chat_template=job["template"], add_generation_prompt=prompt,
            bos_token="<s>", eos_token="</s>",
        )
    except Exception:
        continue  # its own refusal (roles, ...): the real rendering says so
    longest = max(longest, len(out[0]))
    if longest > job["limit"]:
        break
print(longest)
"""
_ON = False
_VERDICTS: dict[str, str | None] = {}
_LOCK = threading.Lock()


def guard_templates(on: bool = True) -> None:
    """Try every new chat template in a child process before this process renders it."""
    global _ON
    _ON = on


def check_template(template) -> str | None:
    """Why this template is refused, or None. Without the guard on, always None."""
    if not _ON or not isinstance(template, str) or not template:
        return None
    key = hashlib.sha256(template.encode("utf-8")).hexdigest()
    with _LOCK:
        if key in _VERDICTS:
            return _VERDICTS[key]
    verdict = _probe(template)
    with _LOCK:
        _VERDICTS[key] = verdict
    return verdict


def _probe(template: str) -> str | None:
    job = json.dumps({"template": template, "messages": PROBE, "limit": MAX_OUTPUT_CHARS})
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD],
            input=job,
            capture_output=True,
            text=True,
            timeout=PROBE_SECONDS,
        )
    except subprocess.TimeoutExpired:
        return (
            f"it did not finish rendering a four-message conversation in {PROBE_SECONDS:.0f} s "
            "(a loop that runs too long?)"
        )
    try:
        longest = int(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None  # the child could not say: the real rendering reports any error
    if longest > MAX_OUTPUT_CHARS:
        return (
            f"it renders a four-message conversation to over {MAX_OUTPUT_CHARS >> 20} M characters"
        )
    return None
