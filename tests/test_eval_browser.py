"""The Evaluate tab in headless Chromium: the one-click demo scores the base model and the
latest fine-tune on the bundled suites, with the table, the error bars, the noise note and
the per-item heatmap; then CSV export and the Japanese labels."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO, child_env, free_port, kill_training, ms, wait_for_http
from tests.test_app_browser import browser  # noqa: F401  (the module's Chromium fixture)
from tests.test_eval import make_lora_run

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def eval_app(tmp_path_factory):
    """`python app.py` on its own workspace that holds one finished LoRA run."""
    from studio.workspace import open_workspace

    root = tmp_path_factory.mktemp("eval-ws")
    run = make_lora_run(open_workspace(root))
    port = free_port()
    log_path = root / "app.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "app.py", "--no-browser", "--port", str(port), "--workspace", str(root)],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=child_env(),
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_http(url, proc, timeout=90)
    except Exception:
        proc.kill()
        raise RuntimeError(log_path.read_text(errors="replace")) from None
    yield {"url": url, "run": run.id}
    kill_training(root / "runs")
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_demo_scores_base_and_finetune_with_table_and_heatmap(
    browser,  # noqa: F811
    eval_app,
    artifacts_dir,
):
    from playwright.sync_api import expect

    page = browser.new_page()
    page.goto(eval_app["url"])
    page.get_by_role("tab", name="Evaluate").click()
    expect(page.locator("#eval-harness")).to_contain_text("lm-evaluation-harness")
    page.locator("#eval-demo").click()
    # The progress shows over the table while it runs: wait for the summary line first.
    status = page.locator("#eval-status")
    expect(status).to_contain_text("Scored 2 model(s) x 2 suite(s)", timeout=ms(120))
    table = page.locator("#eval-table")
    expect(table).to_contain_text("sample-eval-rank/v0001")
    expect(table).to_contain_text("sample-eval-qa/v0001")
    expect(table).to_contain_text(f"run:{eval_app['run']}")
    expect(table).to_contain_text("tsumugi-tiny")
    expect(table).to_contain_text("±")  # every score carries its standard error
    expect(table).to_contain_text("MRR (sentence)")
    noise = page.locator("#eval-noise")
    expect(noise).to_contain_text(f"run:{eval_app['run']} vs tsumugi-tiny")
    expect(noise).to_contain_text("noise")
    expect(page.locator("#eval-heatmap img")).to_be_visible(timeout=ms(30))
    page.locator("#eval-csv").click()
    expect(page.locator("#eval-export")).to_contain_text("-scores", timeout=ms(30))
    expect(page.locator("#eval-export")).to_contain_text("-items")
    page.screenshot(path=str(artifacts_dir / "evaluate-en.png"), full_page=True)

    page.get_by_label("日本語").check()
    expect(page.get_by_role("tab", name="評価")).to_be_visible(timeout=ms(10))
    expect(page.locator("#eval-table")).to_contain_text("MRR（文全体）", timeout=ms(10))
    expect(page.locator("#eval-noise")).to_contain_text("ノイズ")
    page.screenshot(path=str(artifacts_dir / "evaluate-ja.png"), full_page=True)
    page.close()
