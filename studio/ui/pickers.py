"""Pickers that stay current: datasets imported, models saved and runs started after the page
was built (in another tab, from the CLI) appear when the picker is opened.

Only the choices are sent when a picker takes focus, never its value: a value sent back
would overwrite what the user typed meanwhile on a slow server (issue 20).
"""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr


def keep_current(picker, choices: Callable[..., list], inputs=None) -> None:
    """Read `choices(*inputs)` again whenever `picker` is opened."""
    picker.focus(
        lambda *values: gr.update(choices=choices(*values)),
        inputs=inputs or [],
        outputs=picker,
        api_visibility="private",
        show_progress="hidden",
    )


# What the inspector and the trainer read: plain text, prompt/completion pairs, chats, and
# preference and KTO rows (studio/data/preference.py).
CANONICAL = {"text", "prompt_completion", "messages", "preference", "kto"}


def dataset_choices(ws) -> list[str]:
    """Dataset versions a run or the inspector can read, as `name/vNNNN`."""
    from studio.data.registry import list_datasets

    return [f"{d.name}/{d.version}" for d in list_datasets(ws) if d.format in CANONICAL]
