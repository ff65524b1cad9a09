"""The Data tab in headless Chromium, as a user meets it: upload a noisy file, clean it with
the Japanese preset, label a few documents with the keyboard, and see each new version."""

from __future__ import annotations

import json

import pytest

from tests.conftest import REPO, ms
from tests.test_app_browser import browser  # noqa: F401  (the module's Chromium fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def open_upload(context, running_app, upload):
    """A new page on the Data tab with `upload` chosen; (page, what the check found)."""
    page = context.new_page()
    page.goto(running_app["url"])
    page.get_by_role("tab", name="Data").click()
    page.locator("#data-upload input[type=file]").set_input_files(str(upload))
    return page, page.locator("#data-found")


def test_upload_clean_label_and_see_new_versions(browser, running_app, artifacts_dir, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    # 120 documents of the bundled noisy corpus, and one line that is not JSON
    lines = (REPO / "assets" / "data" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    upload = tmp_path / "web-mini.jsonl"
    upload.write_text("\n".join(lines[:60] + ["{broken"] + lines[60:120]) + "\n", encoding="utf-8")

    page, found = open_upload(browser, running_app, upload)
    expect(found).to_contain_text("encoding utf-8", timeout=ms(30))
    expect(found).to_contain_text("line 61")  # the malformed row, found before importing
    page.locator("#data-import").click()
    status = page.locator("#data-import-status")
    expect(page.locator(".toast-body, .toast-wrap").first).to_contain_text("line 61")
    page.locator("#data-skip-bad input").check()
    page.locator("#data-import").click()
    expect(status).to_contain_text("Imported 120 rows as web-mini/v0001", timeout=ms(30))
    version = page.locator("#data-version input")
    expect(version).to_have_value("web-mini/v0001", timeout=ms(10))
    page.screenshot(path=str(artifacts_dir / "data-import-en.png"), full_page=True)

    page.get_by_role("tab", name="Preview").click()
    page.locator("#data-search textarea, #data-search input").first.fill("富士山")
    page.locator("#data-show").click()
    expect(page.locator("#data-matches")).to_contain_text("rows", timeout=ms(20))

    page.get_by_role("tab", name="Clean").click()
    page.locator("#clean-run").click()
    expect(version).to_have_value("web-mini/v0002", timeout=ms(60))
    expect(page.locator("#clean-report")).to_be_visible()
    page.screenshot(path=str(artifacts_dir / "data-clean-en.png"), full_page=True)

    page.get_by_role("tab", name="Quality").click()
    page.locator("#quality-start").click()
    text = page.locator("#quality-doc-text")
    expect(text).not_to_be_empty(timeout=ms(20))
    counts = page.locator("#quality-counts")
    page.locator("#quality-good").click()  # a click, then the keyboard
    expect(counts).to_contain_text("1 good · 0 noise", timeout=ms(10))
    for key, good, noise in (("g", 2, 0), ("n", 2, 1), ("2", 2, 2), ("1", 3, 2)):
        page.keyboard.press(key)
        expect(counts).to_contain_text(f"{good} good · {noise} noise", timeout=ms(10))
    ws = running_app["workspace"]
    labels = [
        json.loads(line)
        for line in (ws / "quality" / "labels" / "web-mini.jsonl").read_text().splitlines()
    ]
    assert sorted(label["label"] for label in labels) == ["good", "good", "good", "noise", "noise"]

    page.get_by_role("tab", name="Versions").click()
    table = page.locator("#data-versions")
    expect(table).to_contain_text("web-mini/v0002")
    expect(table).to_contain_text("web-mini/v0001")
    page.get_by_role("radio", name="日本語").check()
    expect(page.get_by_role("tab", name="バージョン")).to_be_visible(timeout=ms(10))
    page.screenshot(path=str(artifacts_dir / "data-versions-ja.png"), full_page=True)
    page.close()


def test_columns_the_studio_does_not_recognise_can_be_mapped(browser, running_app, tmp_path):  # noqa: F811
    """A CP932 CSV whose headers say nothing: the page shows the file's own columns, the user
    chooses the layout, the mapping offers those columns, and the import works."""
    from playwright.sync_api import expect

    from tests.test_app_browser import pick

    upload = tmp_path / "odd-columns.csv"
    upload.write_bytes("id,foo,bar\n1,こんにちは,どうも\n2,元気？,はい\n".encode("cp932"))
    page, found = open_upload(browser, running_app, upload)
    expect(found).to_contain_text("not recognised", timeout=ms(30))
    expect(found).to_contain_text("Choose the row layout")
    expect(page.locator(".toast-body")).to_have_count(0)  # no error: it is a question
    pick(page, "data-layout", "prompt / completion")
    expect(page.locator("#data-map-prompt")).to_be_visible(timeout=ms(10))
    prompt = page.locator("#data-map-prompt input")
    prompt.click()
    expect(page.get_by_role("option", name="foo")).to_be_visible(timeout=ms(10))  # its columns
    page.get_by_role("option", name="foo").click()
    pick(page, "data-map-completion", "bar")
    page.locator("#data-import").click()
    status = page.locator("#data-import-status")
    expect(status).to_contain_text("Imported 2 rows as odd-columns/v0001", timeout=ms(30))
    # The Inspect tab's picker sees the new version without a reload.
    page.get_by_role("tab", name="Inspect").click()
    pick(page, "inspect-dataset", "odd-columns/v0001")
    expect(page.locator("#inspect-dataset input")).to_have_value("odd-columns/v0001")
    from studio.data.store import open_version
    from studio.workspace import open_workspace

    rows = open_version(open_workspace(running_app["workspace"]), "odd-columns/v0001").to_list()
    assert [(r["prompt"], r["completion"]) for r in rows] == [
        ("こんにちは", "どうも"),
        ("元気？", "はい"),
    ]
    page.close()


def test_an_error_stays_until_closed_in_the_pages_language(browser, running_app):  # noqa: F811
    """A mistake's explanation does not vanish after 10 s, is titled in the page's language,
    and leaves no "Error" badge over the field."""
    from playwright.sync_api import expect

    page = browser.new_page()
    page.goto(running_app["url"])
    page.get_by_role("radio", name="日本語").check()
    page.get_by_role("tab", name="データ").click(timeout=ms(30))
    page.locator("#data-import").click()  # no file chosen
    toast = page.locator(".toast-body")
    expect(toast).to_contain_text("ファイル", timeout=ms(20))
    title = toast.locator(".toast-title").first
    assert title.evaluate('e => getComputedStyle(e, "::before").content') == '"エラー"'
    page.wait_for_timeout(12_000)  # past Gradio's default 10 s
    expect(toast).to_be_visible()
    badges = page.locator('#data-import-status [data-testid="status-tracker"] .clear-status')
    expect(badges.first).to_be_hidden()
    page.locator(".toast-close").first.click()
    expect(toast).to_have_count(0, timeout=ms(10))
    page.close()
