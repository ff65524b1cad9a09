"""A calm, dense look for long sessions; system fonts only (no font downloads offline)."""

from __future__ import annotations

import gradio as gr

from studio.ui.errors import ERROR_CSS
from studio.ui.plots import CURVE_CSS

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

CSS = (
    ERROR_CSS
    + CURVE_CSS
    + """
.chart-legend { display: flex; flex-wrap: wrap; gap: 0.3em 1.2em; margin: 0.4em 0; font-size: 0.9em; }
.legend-item { display: inline-flex; align-items: center; gap: 0.4em; }
.legend-swatch { display: inline-block; width: 1.6em; height: 3px; border-radius: 2px; }
/* never wider than the window: a wide table scrolls inside itself instead (issue 20) */
.gradio-container { max-width: min(1480px, 100vw) !important; margin: 0 auto; }
.table-wrap { max-width: 100%; overflow-x: auto; }
/* a dropdown's long choice ends in an ellipsis before its arrow instead of under it */
.secondary-wrap input { box-sizing: border-box; padding-right: 2.2em; text-overflow: ellipsis; }
#studio-header { align-items: center; border-bottom: 1px solid var(--border-color-primary);
  padding-bottom: 4px; margin-bottom: 4px; }
#studio-title h2 { margin: 0 0 2px 0; font-weight: 600; letter-spacing: .01em; }
#studio-status { font-size: var(--text-sm); color: var(--body-text-color-subdued); }
#model-overview table, #model-special-tokens table { font-size: var(--text-sm); }
#model-notes { font-size: var(--text-sm); }
#chat-template textarea, #generated textarea { font-family: var(--font-mono); }
.token-view { line-height: 2.1; font-family: var(--font-mono); font-size: 13px;
  white-space: pre-wrap; word-break: break-all; }
.tok { display: inline-block; padding: 0 3px; margin: 1px 1px; border-radius: 3px;
  border: 1px solid transparent; line-height: 1.5; vertical-align: top; }
.tok-trained { background: #c9f0df; color: #0b3d2c; border-color: #7ccfae; }
.tok-masked { background: #eceff3; color: #5b6573; }
.tok-pad { background: transparent; color: #a0a8b3; border: 1px dashed #b7bfca; }
.tok-special { border: 2px solid #7c5cc4; font-weight: 600; }
.tok-row-start { border-left: 4px solid #d9822b; }
.token-view .tok-id { display: none; font-size: 10px; color: #6b7280; }
.token-view.compact .tok-id { display: block; }
.dark .tok-trained { background: #124d3b; color: #d5f7ea; border-color: #2f8f6f; }
.dark .tok-masked { background: #2b3138; color: #aeb6c2; }
.trained-text { white-space: pre-wrap; font-family: var(--font-mono); font-size: 13px;
  background: var(--background-fill-secondary); padding: 6px 8px; border-radius: 4px; }
.diag { border-left: 4px solid #999; padding: 4px 10px; margin: 6px 0;
  background: var(--background-fill-secondary); border-radius: 3px; }
.diag-error { border-color: #d33; } .diag-warning { border-color: #e0a100; }
.diag-info { border-color: #3b82f6; }
.diag .badge { font-size: 11px; font-weight: 700; text-transform: uppercase; margin-right: 6px; }
.diag-error .badge { color: #d33; } .diag-warning .badge { color: #b07d00; }
.diag-info .badge { color: #3b82f6; }
.diag code { font-size: 12px; }
.diag .fix { color: var(--body-text-color-subdued); }
.vram { border-left: 4px solid #999; padding: 6px 10px; font-family: var(--font-mono);
  font-size: 12px; background: var(--background-fill-secondary); border-radius: 3px; }
.vram-fits { border-color: #2f8f6f; } .vram-does-not-fit { border-color: #d33; }
.run-status .state { font-weight: 700; }
.state-running, .state-queued { color: #0f766e; } .state-completed { color: #2f8f6f; }
.state-failed { color: #d33; } .state-stopped, .state-interrupted { color: #b07d00; }
.run-progress { height: 6px; background: var(--background-fill-secondary); border-radius: 3px;
  margin-top: 6px; overflow: hidden; }
/* table headers wrap between words, never one character per line (the table scrolls) */
.table-wrap th, .table-wrap th * { word-break: keep-all; overflow-wrap: normal; }
.run-progress > div { height: 100%; background: #14b8a6; transition: width 0.5s; }
.run-message { color: #b91c1c; } .run-note { color: var(--body-text-color-subdued); }
.train-blocked { color: #d33; }
.cmp-scroll { overflow-x: auto; }
.cmp-grid { border-collapse: collapse; width: 100%; font-size: 13px; }
.cmp-grid th, .cmp-grid td { border: 1px solid var(--border-color-primary); padding: 6px 8px;
  vertical-align: top; text-align: left; min-width: 180px; }
.cmp-grid thead th { background: var(--background-fill-secondary); font-weight: 600; }
.cmp-grid .cmp-prompt { font-weight: 500; max-width: 220px; }
.cmp-text { white-space: pre-wrap; word-break: break-word; }
.cmp-meta { margin-top: 6px; font-size: 11px; color: var(--body-text-color-subdued); }
.cmp-badge { display: inline-block; padding: 0 6px; margin-right: 4px; border-radius: 9px;
  font-weight: 700; font-size: 11px; }
.cmp-eos { background: #c9f0df; color: #0b3d2c; } .cmp-len { background: #fde8b0; color: #6b4a00; }
.cmp-rep, .cmp-lit { background: #fbd0d0; color: #7a1111; }
.cmp-error { color: #b91c1c; } .cmp-pending { color: var(--body-text-color-subdued); }
.cmp-empty { color: var(--body-text-color-subdued); padding: 8px 0; }
.chat-ok { font-size: 12px; color: var(--body-text-color-subdued); }
.guide-steps { list-style: none; display: flex; flex-wrap: wrap; gap: 6px; padding: 0;
  margin: 4px 0; }
.guide-step { padding: 3px 10px; border-radius: 12px; font-size: 13px;
  border: 1px solid var(--border-color-primary); background: var(--background-fill-secondary); }
.guide-done { background: #c9f0df; color: #0b3d2c; border-color: #7ccfae; }
.guide-running { background: #ccfbf1; color: #0f766e; border-color: #14b8a6; }
.guide-skipped { color: var(--body-text-color-subdued); text-decoration: line-through; }
.guide-next { font-weight: 600; margin: 4px 0 8px 0; }
.guide-table { border-collapse: collapse; font-size: 13px; margin: 4px 0; }
.guide-table th, .guide-table td { border: 1px solid var(--border-color-primary);
  padding: 3px 8px; text-align: left; }
.guide-examples li { font-size: 13px; color: var(--body-text-color-subdued); }
.guide-reply { white-space: pre-wrap; background: var(--background-fill-secondary);
  padding: 6px 10px; border-radius: 4px; }
"""
)


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
