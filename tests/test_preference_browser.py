"""Preference pairs in headless Chromium: a person compares the embedded model with an
adapter over it, presses 1, 2 and = on the grid's rows, saves, and the dataset version holds
exactly the chosen/rejected rows marked (the tie is not written); the Data tab offers it.
The same panel in Japanese has no English left."""

from __future__ import annotations

import pytest

from tests.conftest import app_process, make_adapter, ms
from tests.test_app_browser import browser, pick  # noqa: F401  (the module's Chromium fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PROMPTS = ["富士山の高さは？", "お茶の淹れ方は？", "こんにちは。"]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    ws = tmp_path_factory.mktemp("pref-browser-ws")
    make_adapter(ws / "models" / "demo-adapter", seed=5)
    with app_process(ws, tmp_path_factory.mktemp("pref-browser-log") / "app.log") as running:
        yield running


def test_mark_rows_with_the_keyboard_and_save_a_preference_dataset(
    browser,  # noqa: F811
    app,
    artifacts_dir,
    tmp_path,
):
    from playwright.sync_api import expect

    from studio.compare import read_comparison
    from studio.data.preference import pairs_from_marks
    from studio.data.records import dataset_file, iter_records
    from studio.data.store import resolve
    from studio.ui.compare_tab import DEMO_SYSTEM
    from studio.workspace import open_workspace
    from tests.test_japanese_browser import english_words

    page = browser.new_page()
    page.goto(app["url"])
    page.get_by_role("tab", name="Compare").click()
    pick(page, "compare-models", "demo-adapter")
    page.keyboard.press("Escape")
    page.locator("#compare-prompts textarea").fill("\n".join(PROMPTS))
    page.locator("#compare-max-new input").fill("12")
    page.locator("#compare-run").click()
    expect(page.locator("#compare-status")).to_contain_text("Done: 6 replies", timeout=ms(90))
    view = page.locator("#compare-pref-view")
    expect(view).to_contain_text("Row 1 of 3", timeout=ms(20))
    expect(view).to_contain_text("Reply 1: tsumugi-tiny")  # the grid's first two models
    expect(view).to_contain_text("Reply 2: demo-adapter")
    expect(page.locator("#compare-pref-first input")).to_have_value("tsumugi-tiny")

    progress = page.locator("#compare-pref-progress")
    page.locator("#compare-pref-view").click()  # the focus out of any text field
    page.keyboard.press("1")
    expect(progress).to_contain_text("Marked 1 of 3 rows: 1 pairs", timeout=ms(20))
    expect(view).to_contain_text("Row 2 of 3")
    page.keyboard.press("2")
    expect(progress).to_contain_text("Marked 2 of 3 rows: 2 pairs", timeout=ms(20))
    expect(view).to_contain_text("Row 3 of 3")
    page.keyboard.press("=")
    expect(progress).to_contain_text("Marked 3 of 3 rows: 2 pairs, 1 ties", timeout=ms(20))
    # keys typed into a text field stay text
    name = page.locator("#compare-pref-name textarea, #compare-pref-name input").first
    name.fill("")
    name.press_sequentially("keyed-prefs1=2")
    expect(name).to_have_value("keyed-prefs1=2")
    expect(progress).to_contain_text("Marked 3 of 3 rows: 2 pairs, 1 ties")
    name.fill("keyed-prefs")
    page.locator("#compare-pref-save").click()
    status = page.locator("#compare-pref-status")
    expect(status).to_contain_text("as preference dataset keyed-prefs/v0001", timeout=ms(30))

    # What was written: exactly the rows pressed 1 and 2, from the grid the page showed.
    href = page.locator("#compare-csv a").get_attribute("href")
    grid_csv = tmp_path / "grid.csv"
    grid_csv.write_bytes(page.request.get(href).body())
    comparison = read_comparison(grid_csv, chat=True, system=DEMO_SYSTEM)
    expected, counts = pairs_from_marks(
        comparison,
        [
            {"prompt_index": 0, "chosen": "tsumugi-tiny", "rejected": "demo-adapter"},
            {"prompt_index": 1, "chosen": "demo-adapter", "rejected": "tsumugi-tiny"},
            {"prompt_index": 2, "tie": True},
        ],
    )
    assert counts["ties"] == 1 and counts["pairs"] + counts["unusable"] == 2
    expect(status).to_contain_text(f"Saved {counts['pairs']} pairs")
    version = resolve(open_workspace(app["workspace"]), "keyed-prefs/v0001")
    records = list(iter_records(dataset_file(version)))
    assert {r.format for r in records} == {"preference"}
    assert [{k: r.data[k] for k in expected[0]} for r in records] == expected
    assert records[0].data["prompt"][-1] == {"role": "user", "content": PROMPTS[0]}
    page.locator("#compare-pref").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts_dir / "compare-preference-en.png"), full_page=True)

    page.get_by_role("radio", name="日本語").check()
    expect(progress).to_contain_text("印をつけた行: 3 / 3", timeout=ms(20))
    expect(view).to_contain_text("行 3 / 3")
    panel_text = page.locator("#compare-pref").inner_text()
    shown = page.locator("#compare-pref-view .cmp-text").all_inner_texts()
    for data in [*shown, status.inner_text()]:  # the model's words; what was said in English
        panel_text = panel_text.replace(data, " ")
    assert not english_words(panel_text), english_words(panel_text)
    page.screenshot(path=str(artifacts_dir / "compare-preference-ja.png"), full_page=True)

    # The Data tab's version picker offers the new version.
    page.get_by_role("tab", name="データ", exact=True).click()
    page.locator("#data-version input").click()
    expect(page.get_by_role("option", name="keyed-prefs/v0001")).to_be_visible(timeout=ms(20))
    page.close()
