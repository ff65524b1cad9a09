"""Token stores in a real browser: a scan shows how far the encoding has come and can be
cancelled (nothing kept); a finished scan says which store it made; the Data tab lists the
store with its size and removes it."""

from __future__ import annotations

import pytest

from tests.conftest import app_process, kill_training, ms
from tests.test_app_browser import browser, pick  # noqa: F401  (the module's Chromium fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """An app of its own, on a workspace with a generated corpus that takes a while to
    encode (about 40 MB of text)."""
    from bench.corpus import write_dataset
    from studio.workspace import open_workspace

    ws = tmp_path_factory.mktemp("tokens-ws")
    write_dataset(open_workspace(ws), "gen-big", 40 << 20)
    with app_process(ws, tmp_path_factory.mktemp("tokens-log") / "app.log") as running:
        yield running
        kill_training(ws / "runs")


def stores(ws_path):
    from studio.tokens.cache import list_stores
    from studio.workspace import open_workspace

    return list_stores(open_workspace(ws_path))


def test_scan_progress_cancel_and_the_token_stores_list(browser, app, artifacts_dir):  # noqa: F811
    from playwright.sync_api import expect

    page = browser.new_page()
    page.goto(app["url"])
    page.get_by_role("tab", name="Inspect").click()
    pick(page, "inspect-dataset", "gen-big/v0001")
    page.locator("#inspect-scan").click()
    summary = page.locator("#inspect-summary")
    expect(summary).to_contain_text("Encoding the dataset", timeout=ms(60))
    expect(summary).to_contain_text("tokens/s", timeout=ms(60))  # rows are coming in
    page.screenshot(path=str(artifacts_dir / "tokens-encoding-en.png"), full_page=False)
    page.locator("#inspect-cancel").click()
    expect(summary).to_contain_text("Cancelled", timeout=ms(60))
    assert stores(app["workspace"]) == []  # nothing half-written is kept or listed

    pick(page, "inspect-dataset", "sample-chat-ojousama/v0001")
    page.locator("#inspect-scan").click()
    expect(summary).to_contain_text("330 rows", timeout=ms(60))
    expect(summary).to_contain_text("Encoded into token store")
    page.locator("#inspect-scan").click()  # the same scan again reads the store
    expect(summary).to_contain_text("encoded before", timeout=ms(60))
    (store,) = stores(app["workspace"])

    page.get_by_role("tab", name="Data").click()
    page.get_by_role("tab", name="Token stores").click()
    table = page.locator("#tokens-table")
    expect(table).to_contain_text("sample-chat-ojousama/v0001", timeout=ms(30))
    expect(table).to_contain_text(store.key[:12])
    expect(page.locator("#tokens-summary")).to_contain_text("1 store(s)")
    page.get_by_label("日本語").check()
    expect(page.get_by_role("tab", name="トークンストア")).to_be_visible(timeout=ms(10))
    page.screenshot(path=str(artifacts_dir / "tokens-list-ja.png"), full_page=True)
    pick(page, "tokens-pick", store.key[:12])
    page.locator("#tokens-remove").click()
    expect(page.locator("#tokens-status")).to_contain_text("削除しました", timeout=ms(30))
    expect(table).not_to_contain_text("sample-chat-ojousama/v0001")
    assert stores(app["workspace"]) == []
    page.close()
