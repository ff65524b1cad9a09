"""The Data tab's synthesis section in headless Chromium: import a corpus, generate pairs
from four passages with the embedded model, watch the job end and read its report, in
English and in Japanese."""

from __future__ import annotations

import pytest

from tests.conftest import REPO, ms
from tests.test_app_browser import browser  # noqa: F401  (the module's Chromium fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_generate_pairs_from_a_corpus_and_read_the_report(
    browser,  # noqa: F811
    running_app,
    artifacts_dir,
    tmp_path,
):
    from playwright.sync_api import expect

    lines = (REPO / "assets" / "data" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    upload = tmp_path / "synth-source.jsonl"
    upload.write_text("\n".join(lines[:20]) + "\n", encoding="utf-8")
    page = browser.new_page()
    page.goto(running_app["url"])
    page.get_by_role("tab", name="Data").click()
    page.locator("#data-upload input[type=file]").set_input_files(str(upload))
    expect(page.locator("#data-found")).to_contain_text("encoding utf-8", timeout=ms(30))
    page.locator("#data-import").click()
    expect(page.locator("#data-version input")).to_have_value("synth-source/v0001", timeout=ms(30))

    page.get_by_role("tab", name="Synthesize SFT data").click()
    model = page.locator("#synth-model input")
    model.click()
    page.get_by_role("option", name="tsumugi-tiny", exact=False).first.click()
    page.locator("#synth-limit input").fill("4")
    page.get_by_text("Passage and generation settings").click()
    page.locator("#synth-size input").fill("250")
    page.locator("#synth-overlap input").fill("50")
    page.locator("#synth-batch input").fill("2")
    page.locator("#synth-max-new-tokens input").fill("48")
    page.get_by_text("View or edit the template").click()
    expect(page.locator("#synth-template-text")).to_contain_text("{passage}")
    page.locator("#synth-start").click()
    status = page.locator("#synth-status")
    expect(status).to_contain_text("Started job", timeout=ms(30))
    expect(status).to_contain_text("completed", timeout=ms(180))
    expect(status).to_contain_text("passages 4/4")
    report = page.locator("#synth-report")
    expect(report).to_contain_text("Reason", timeout=ms(20))
    expect(report).to_contain_text("of", timeout=ms(20))
    job = page.locator("#synth-job input").input_value()
    assert (running_app["workspace"] / "synth" / job / "report.json").is_file()
    page.screenshot(path=str(artifacts_dir / "data-synth-en.png"), full_page=True)

    page.get_by_role("radio", name="日本語").check()
    expect(status).to_contain_text("完了", timeout=ms(20))
    expect(report).to_contain_text("理由")
    page.screenshot(path=str(artifacts_dir / "data-synth-ja.png"), full_page=True)
    page.close()
