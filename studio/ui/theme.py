"""A calm, dense look for long sessions; system fonts only (no font downloads offline)."""

from __future__ import annotations

import gradio as gr

FONTS = [
    "Noto Sans JP",
    "Hiragino Sans",
    "Yu Gothic UI",
    "Meiryo",
    "system-ui",
    "-apple-system",
    "Segoe UI",
    "sans-serif",
]
MONO = ["Noto Sans Mono CJK JP", "Cascadia Mono", "Menlo", "Consolas", "monospace"]

CSS = """
.gradio-container { max-width: 1480px !important; margin: 0 auto; }
#studio-header { align-items: center; border-bottom: 1px solid var(--border-color-primary);
  padding-bottom: 4px; margin-bottom: 4px; }
#studio-title h2 { margin: 0 0 2px 0; font-weight: 600; letter-spacing: .01em; }
#studio-status { font-size: var(--text-sm); color: var(--body-text-color-subdued); }
#model-overview table, #model-special-tokens table { font-size: var(--text-sm); }
#model-notes { font-size: var(--text-sm); }
#chat-template textarea, #generated textarea { font-family: var(--font-mono); }
"""


def theme() -> gr.themes.Base:
    return gr.themes.Soft(
        primary_hue="teal",
        secondary_hue="slate",
        neutral_hue="slate",
        spacing_size="sm",
        radius_size="sm",
        text_size="sm",
        font=FONTS,
        font_mono=MONO,
    )
