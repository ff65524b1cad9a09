"""Page: how long a person waits for the studio in a browser, idle and while a run trains.

Starts `python app.py` on a fresh workspace and opens it in headless Chromium (Debian's
package, as the browser tests use) with a Japanese browser (Accept-Language ja-JP). For
each phase it reports, in seconds from the navigation:

- `painted`: the tabs are on the page;
- `japanese`: the tabs are labelled in Japanese (before that the page shows the language it
  was built in, English);
- `interactive`: the Model tab describes the loaded embedded model (the page's start-up
  events have all run);

and the median time of a language switch (English and back, `--switches` each way) until
the tab labels show the new language. Phases: `idle`, then `training` (the CPU demo preset
trains beside it, started from the Train tab), with `--busy N` busy processes at the user's
priority in both.

    python bench/page.py [--switches 3] [--busy N] [--json page.json]

Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.load import run_state, start_run  # noqa: E402
from tests.conftest import app_process  # noqa: E402
from tests.test_app_browser import ARGS, CHROMIUM  # noqa: E402

CEILING_MS = 300_000


def open_page(browser, url: str) -> dict:
    from playwright.sync_api import expect

    context = browser.new_context(locale="ja-JP", viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    started = time.perf_counter()
    page.goto(url)
    page.get_by_role("tab").first.wait_for(timeout=CEILING_MS)
    painted = time.perf_counter() - started
    expect(page.get_by_role("tab", name="モデル")).to_be_visible(timeout=CEILING_MS)
    japanese = time.perf_counter() - started
    page.get_by_role("tab", name="モデル").click()
    expect(page.locator("#model-overview")).to_contain_text("パラメータ数", timeout=CEILING_MS)
    interactive = time.perf_counter() - started
    return {
        "page": page,
        "context": context,
        "painted_s": round(painted, 2),
        "japanese_s": round(japanese, 2),
        "interactive_s": round(interactive, 2),
    }


def switch_times(page, times: int) -> dict:
    from playwright.sync_api import expect

    took = {"to_en": [], "to_ja": []}
    for _ in range(times):
        for label, tab, key in (("English", "Model", "to_en"), ("日本語", "モデル", "to_ja")):
            started = time.perf_counter()
            page.get_by_label(label).check()
            expect(page.get_by_role("tab", name=tab, exact=True)).to_be_visible(timeout=CEILING_MS)
            took[key].append(time.perf_counter() - started)
            page.wait_for_timeout(500)
    return {f"switch_{k}_s": round(statistics.median(v), 2) for k, v in took.items()}


def phase(browser, url: str, switches: int) -> dict:
    opened = open_page(browser, url)
    result = {k: v for k, v in opened.items() if k.endswith("_s")}
    result.update(switch_times(opened["page"], switches))
    opened["context"].close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--switches", type=int, default=3, help="switches each way per phase")
    parser.add_argument("--busy", type=int, default=0,
                        help="busy processes at the user's priority beside it")  # fmt: skip
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        with tempfile.TemporaryDirectory(prefix="studio-page-") as tmp:
            ws = Path(tmp) / "ws"
            with app_process(ws, Path(tmp) / "app.log") as app, sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
                phase(browser, app["url"], 1)  # the browser's and the app's first page
                result = {
                    "busy_processes": args.busy,
                    "idle": phase(browser, app["url"], args.switches),
                }
                run_id = start_run(app["url"], steps=100000)
                while run_state(ws, run_id).get("state") in {None, "queued"}:
                    time.sleep(0.5)
                time.sleep(5)  # past the run's start-up
                result["training"] = phase(browser, app["url"], args.switches)
                result["run_state_after"] = run_state(ws, run_id).get("state")
                browser.close()
    finally:
        for process in busy:
            process.kill()
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
