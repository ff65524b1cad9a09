"""Long work started from a tab (encoding a dataset into its token store): it runs in a
thread while the handler yields its progress to the page, and a Cancel button stops it.

The cancel flag belongs to the browser session and the kind of work, so one person's
Cancel never stops another person's check.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable, Iterator

from studio.i18n import t

POLL_S = 0.5


class Cancels:
    """One cancel flag per (browser session, kind of work) while that work runs."""

    def __init__(self) -> None:
        self._flags: dict[tuple[str, str], threading.Event] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(request, kind: str) -> tuple[str, str]:
        return (getattr(request, "session_hash", None) or "", kind)

    def start(self, request, kind: str) -> threading.Event:
        flag = threading.Event()
        with self._lock:
            self._flags[self._key(request, kind)] = flag
        return flag

    def cancel(self, request, kind: str) -> bool:
        with self._lock:
            flag = self._flags.get(self._key(request, kind))
        if flag is None:
            return False
        flag.set()
        return True

    def finish(self, request, kind: str, flag: threading.Event) -> None:
        with self._lock:
            if self._flags.get(self._key(request, kind)) is flag:
                del self._flags[self._key(request, kind)]


CANCELS = Cancels()


class Background:
    """`work(progress, cancel)` in a thread: `updates()` yields its latest progress (None
    before the first) every POLL_S until it ends, then `result()` gives what it returned
    or raises what it raised."""

    def __init__(self, work: Callable, request, kind: str) -> None:
        self.request, self.kind = request, kind
        self.flag = CANCELS.start(request, kind)
        self.latest = None
        self._outcome: dict = {}
        self._thread = threading.Thread(target=self._run, args=(work,), daemon=True)
        self._thread.start()

    def _run(self, work) -> None:
        def report(progress) -> None:
            self.latest = progress

        try:
            self._outcome["value"] = work(report, self.flag.is_set)
        except BaseException as exc:  # noqa: BLE001 - handed to the page's handler
            self._outcome["error"] = exc
        finally:
            CANCELS.finish(self.request, self.kind, self.flag)

    def updates(self) -> Iterator:
        while True:
            self._thread.join(POLL_S)
            if not self._thread.is_alive():
                return
            yield self.latest

    def result(self):
        self._thread.join()
        if "error" in self._outcome:
            raise self._outcome["error"]
        return self._outcome.get("value")


def pull_line(progress, lang: str) -> str:
    """A Hub download's progress (`models.hub.PullProgress`), or that it is starting."""
    return progress.line() if progress is not None else t("model.pull_starting", lang)


def store_line(store: dict | None, lang: str) -> str:
    """Which token store a scan read, and whether it was encoded for it."""
    if not store:
        return ""
    which = "tokens.store_now" if store.get("encoded_now") else "tokens.store_reused"
    return t(
        which,
        lang,
        store=store["key"][:12],
        tokens=f"{store.get('tokens', 0):,}",
        seconds=store.get("encode_seconds"),
    )


def _percent(fraction: float | None) -> str:
    return "…" if fraction is None else f"{fraction:.0%}"


def duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


def progress_text(progress, lang: str) -> str:
    """One line saying how far the work has come (a `studio.tokens.build.Progress`)."""
    if progress is None:
        return t("tokens.starting", lang)
    if progress.state == "encoding":
        eta = t("tokens.eta", lang, eta=duration(progress.eta_s)) if progress.eta_s else ""
        total = f" / {progress.total_rows:,}" if progress.total_rows else ""
        return t(
            "tokens.encoding",
            lang,
            percent=_percent(progress.fraction),
            rows=f"{progress.rows:,}{total}",
            tokens=f"{progress.tokens:,}",
            speed=f"{progress.tokens_per_s:,.0f}",
            eta=eta,
        )
    if progress.state == "checking":
        return t("tokens.checking", lang, percent=_percent(progress.fraction))
    return t(f"tokens.{progress.state}", lang)


def progress_html(progress, lang: str) -> str:
    """The same as a block with a progress bar, for an HTML output."""
    fraction = getattr(progress, "fraction", None)
    bar = ""
    if fraction is not None:
        bar = (
            f'<progress max="1000" value="{int(fraction * 1000)}" '
            'style="width:100%;height:0.8em"></progress>'
        )
    text = html.escape(progress_text(progress, lang))
    return f'<div class="studio-progress"><p>{text}</p>{bar}</div>'
