"""What happened to a run and what to do next, in the user's language: the Train tab's status
line and the Runs tab's table both say it this way."""

from __future__ import annotations

from studio.i18n import t
from studio.runs.store import ACTIVE

# Reasons a run ended (status.json `reason`) that the user is told about in their language;
# any other reason (bad data, a config error, a crash) shows the run's own message.
EXPLAINED = {
    "disk_full",
    "oom",
    "process_gone",
    "status_unreadable",
    "stop_requested",
    "stopped_queued",
    "killed",
}


def explain(status: dict, lang: str) -> str:
    """What happened to a run and what to do next, in the user's language: the status
    line of the Train tab and the Runs tab's table."""
    state, reason = status.get("state"), status.get("reason") or ""
    message = str(status.get("message") or "")
    if state == "queued":  # waiting for another run, or only starting (model, data)
        return t(
            "train.why_queued" if reason == "waiting_for_device" else "train.why_starting", lang
        )
    if state in ACTIVE or state == "completed":
        return message
    if reason in EXPLAINED:
        said = t(f"train.why_{reason}", lang)
        details = message.partition("Details: ")[2]
        return f"{said} ({details})" if details else said
    if reason.startswith("killed by "):
        signal_name = reason.removeprefix("killed by ")
        key = "train.why_sigkill" if signal_name == "SIGKILL" else "train.why_signal"
        return t(key, lang, signal=signal_name)
    return message
