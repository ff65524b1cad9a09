"""The inspector's diagnostics as HTML: the Inspect tab's report and the Train tab's check."""

from __future__ import annotations

import html

from studio.i18n import t
from studio.labels.diagnose import Diagnostic, explain


def render_diagnostics(diagnostics: list[Diagnostic], rows: int, lang: str) -> str:
    if not diagnostics:
        return f'<div class="diag diag-info">{html.escape(t("inspect.no_problems", lang, rows=rows))}</div>'
    parts = []
    for d in diagnostics:
        message, fix = explain(d, lang)
        sample = ", ".join(str(r) for r in d.rows[:12]) + (" …" if d.count > 12 else "")
        parts.append(
            f'<div class="diag diag-{d.severity}" data-code="{d.code}">'
            f'<span class="badge">{html.escape(t("inspect.sev_" + d.severity, lang))}</span>'
            f"<code>{d.code}</code> · {d.count} ({d.params.get('share', 0):.1%}) · "
            f"{html.escape(t('inspect.row', lang))} {sample}<br>{html.escape(message)}<br>"
            f'<span class="fix">→ {html.escape(fix)}</span></div>'
        )
    return "".join(parts)
