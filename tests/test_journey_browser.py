"""The newcomer's whole journey, in a real browser, on a fresh workspace, through the UI only:
the Start tab's guided first run (sample corpus -> clean -> inspect -> train the CPU demo ->
compare -> chat -> evaluate -> export), in Japanese and then English, with a screenshot of
every step saved as a test artifact (test-artifacts/journey-*.png)."""

import pytest

from tests.conftest import fresh_app, ms
from tests.test_app_browser import browser  # noqa: F401 - the shared Chromium fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TRAINING_TIMEOUT_MS = 480_000  # the CPU demo takes ~2 min on 2 quiet cores; CI is not quiet


@pytest.fixture(scope="module")
def journey_app(tmp_path_factory):
    with fresh_app(tmp_path_factory, "journey") as app:
        yield app


def test_a_newcomer_walks_the_whole_guided_first_run(browser, journey_app, artifacts_dir):  # noqa: F811
    from playwright.sync_api import expect

    page = browser.new_page()
    page.set_extra_http_headers({"Accept-Language": "ja-JP,ja;q=0.9"})
    shots = []

    def shot(name: str) -> None:
        path = artifacts_dir / f"journey-{len(shots) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        shots.append(path)

    def step_state(step: str):
        return page.locator(f'#guide-progress li[data-step="{step}"]')

    def run_step(step: str, expected: str, timeout: int = 90_000) -> None:
        page.locator(f"#guide-{step}-run").click()
        expect(page.locator(f"#guide-{step}-result")).to_contain_text(expected, timeout=timeout)
        expect(step_state(step)).to_have_attribute("data-state", "done", timeout=timeout)
        assert "guide.failed" not in page.content()
        expect(page.locator(f"#guide-{step}-result .diag-error")).to_have_count(0)

    # A fresh workspace opens on the guide, in the browser's language.
    page.goto(journey_app["url"])
    expect(page.get_by_role("tab", name="はじめに", selected=True)).to_be_visible(timeout=ms(30))
    expect(page.locator("#guide-progress li")).to_have_count(8)
    expect(page.locator("#guide-progress .guide-next")).to_contain_text("サンプルコーパス")
    shot("start")

    # Skippable: skipping the first step moves on to the next; it can still be run later.
    page.locator("#guide-sample-skip").click()
    expect(step_state("sample")).to_have_attribute("data-state", "skipped")
    expect(page.locator("#guide-progress .guide-next")).to_contain_text("クリーニング")
    run_step("sample", "sample-corpus/v0001")
    shot("sample")

    run_step("clean", "sample-corpus/v0002")
    shot("clean")
    # The cleaned version is the Data tab's too.
    page.locator("#guide-clean-open").click()
    expect(page.get_by_role("tab", name="データ", selected=True)).to_be_visible()
    page.get_by_role("tab", name="はじめに").click()

    run_step("inspect", "損失")
    expect(page.locator("#guide-inspect-result .vram")).to_be_visible()
    shot("inspect")

    page.locator("#guide-train-run").click()
    status = page.locator("#guide-train-result .run-status")
    expect(status).to_be_visible(timeout=ms(60))
    expect(step_state("train")).to_have_attribute("data-state", "running", timeout=ms(60))
    shot("train-running")
    expect(status).to_have_attribute("data-state", "completed", timeout=TRAINING_TIMEOUT_MS)
    expect(step_state("train")).to_have_attribute("data-state", "done", timeout=ms(30))
    run_id = status.locator("b").first.inner_text()
    shot("train-done")

    run_step("compare", run_id)
    grid = page.locator("#guide-compare-result .cmp-grid")
    expect(grid.locator("thead th")).to_have_count(3)  # prompt, base, fine-tune
    expect(grid.locator("tbody tr")).to_have_count(3)  # the three demo prompts
    shot("compare")

    # The rest in English: every label follows the switch.
    page.get_by_label("English").check()
    expect(page.get_by_role("tab", name="Start here", selected=True)).to_be_visible(timeout=ms(15))
    expect(page.locator("#guide-chat")).to_contain_text("Chat with it")
    expect(page.locator("#guide-progress .guide-next")).to_contain_text("Next: 6.")

    page.locator("#guide-chat-message textarea").fill("こんにちは。")
    run_step("chat", "replied")
    expect(page.locator("#guide-chat-result .guide-reply")).not_to_be_empty()
    shot("chat")

    run_step("evaluate", "Saved results")
    expect(page.locator("#guide-evaluate-result .guide-table tbody tr")).not_to_have_count(0)
    expect(page.locator("#guide-evaluate-result")).to_contain_text(run_id)
    shot("evaluate")

    run_step("export", "Exported")
    expect(page.locator("#guide-export-result")).to_contain_text(f"{run_id}-merged")
    expect(page.locator("#guide-progress .guide-next")).to_contain_text("That is the whole path")
    expect(page.locator('#guide-progress li[data-state="done"]')).to_have_count(8)
    shot("done")

    # The run and the exported model are the other tabs' too.
    page.locator("#guide-train-open").click()
    expect(page.get_by_role("tab", name="Train", selected=True)).to_be_visible()
    page.get_by_role("tab", name="Runs").click()
    expect(page.locator("#runs-table")).to_contain_text(run_id, timeout=ms(30))
    shot("runs")
    assert "Traceback" not in page.content()
    assert (
        journey_app["workspace"] / "models" / f"{run_id}-merged" / "model.safetensors"
    ).is_file()
    assert len(shots) == 11
    page.close()
