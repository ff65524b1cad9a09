"""How a run stands, said in words: the locale key and parameters that explain a run's
status (why it waits, why it ended and what to do next). The front ends render it in the
user's language: the Train tab's status line, the Runs tab's table, `runs show`."""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class Explanation:
    """`key` (a locale key) with `params`, and `details` (the run's own words, to show
    after it); or no key: the run's own `message` says it."""

    key: str | None = None
    params: dict = field(default_factory=dict)
    details: str = ""
    message: str = ""


def explain_status(status: dict) -> Explanation:
    state, reason = status.get("state"), status.get("reason") or ""
    message = str(status.get("message") or "")
    if state == "queued":  # waiting for another run, or only starting (model, data)
        return Explanation(
            "train.why_queued" if reason == "waiting_for_device" else "train.why_starting"
        )
    early = status.get("early_stop")
    if state == "completed" and reason == "early_stopped" and isinstance(early, dict):
        value = early.get("best_value")
        return Explanation(
            "train.why_early_stopped",
            {
                "metric": early.get("metric"),
                "patience": early.get("patience"),
                "since": f"{early.get('best_step') or 0:,}",
                "value": f"{value:.4g}" if isinstance(value, int | float) else "-",
                "step": f"{early.get('step') or 0:,}",
            },
        )
    if state in ACTIVE or state == "completed":
        return Explanation(message=message)
    if reason in EXPLAINED:
        return Explanation(f"train.why_{reason}", details=message.partition("Details: ")[2])
    if reason.startswith("killed by "):
        signal_name = reason.removeprefix("killed by ")
        key = "train.why_sigkill" if signal_name == "SIGKILL" else "train.why_signal"
        return Explanation(key, {"signal": signal_name})
    return Explanation(message=message)
