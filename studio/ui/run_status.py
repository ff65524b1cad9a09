"""A run's status explained (`runs.status.explain_status`), rendered in the user's language:
the Train tab's status line and the Runs tab's table both say it this way."""

from __future__ import annotations

from studio.i18n import t
from studio.runs.status import EXPLAINED, explain_status

__all__ = ["EXPLAINED", "explain"]


def explain(status: dict, lang: str) -> str:
    """What happened to a run and what to do next, in `lang`."""
    said = explain_status(status)
    if said.key is None:
        return said.message
    text = t(said.key, lang, **said.params)
    return f"{text} ({said.details})" if said.details else text
