"""Every chart shows the state its controls show, on the first click: the Runs comparison
and the Train tab's curve, in headless Chromium, read from the drawn SVG lines."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO, child_env, fresh_app, ms
from tests.test_app_browser import browser  # noqa: F401  (the module's Chromium fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
DRAWN = (
    "{} svg .mark-line path[stroke][aria-label]"
    ':not([aria-label*="value: null"]):not([aria-label*="series: ~span"])'
)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with fresh_app(tmp_path_factory, "charts") as running:
        yield running


def train(ws, *sets) -> dict:
    args = [sys.executable, "-m", "studio", "train", "cpu-demo-sft", "--json", "--workspace",
            str(ws), "--set", "max_steps=4", "--set", "logging_steps=1",
            *[part for s in sets for part in ("--set", s)]]  # fmt: skip
    proc = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600,
                          env=child_env())  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    run_id = json.loads(proc.stdout)["run"]
    metrics = (ws / "runs" / run_id / "metrics.jsonl").read_text().splitlines()
    first = next(r for r in map(json.loads, metrics) if r.get("kind") == "train")
    return {"id": run_id, "first": first}


def first_points(page, chart: str) -> dict[str, tuple[float, float]]:
    """series -> (x, value) of the first point of each drawn line."""
    lines = page.locator(DRAWN.format(chart))
    out = {}
    for i in range(lines.count()):
        label = lines.nth(i).get_attribute("aria-label") or ""
        found = dict(re.findall(r"(\w+): ([^;]+)", label))
        out[found["series"]] = (float(found["x"]), float(found["value"]))
    return out


def wait_for(page, chart: str, want) -> dict:
    """Poll the drawn chart until `want(points)` holds (a slow machine draws late)."""
    points: dict = {}
    for _ in range(int(ms(20) / 250)):
        points = first_points(page, chart)
        if want(points):
            return points
        page.wait_for_timeout(250)
    raise AssertionError(f"the chart shows {points}")


def test_charts_follow_every_control_on_the_first_click(browser, app):  # noqa: F811
    import math

    from playwright.sync_api import expect

    ws = app["workspace"]
    a = train(ws)
    b = train(ws, "learning_rate=1e-4")
    step, tokens, loss = a["first"]["step"], a["first"]["tokens"], a["first"]["loss"]
    assert tokens != step

    page = browser.new_page()
    page.goto(app["url"])
    page.get_by_role("tab", name="Runs").click()
    expect(page.locator("#runs-table")).to_contain_text(b["id"], timeout=ms(30))
    picker = page.locator("#runs-select input")
    picker.click()
    for run in (a, b):
        picker.fill(run["id"])
        page.get_by_role("option", name=run["id"], exact=True).click()
        page.wait_for_timeout(300)
    page.keyboard.press("Escape")
    chart = "#runs-curve"
    # both runs drawn once the second is added, not one update later
    wait_for(page, chart, lambda p: len(p) == 2)
    caption = page.locator("#runs-caption")
    expect(caption.locator(".legend-item")).to_have_count(2)
    expect(caption).to_contain_text(a["id"])
    page.locator("#runs-x").get_by_text("tokens seen").click()
    wait_for(page, chart, lambda p: p and all(x == tokens for x, _ in p.values()))
    page.locator("#runs-x").get_by_text("step", exact=True).click()
    wait_for(page, chart, lambda p: p and all(x == step for x, _ in p.values()))
    page.locator("#runs-scale").get_by_text("log").click()
    expect(caption).to_contain_text("log10")
    shown = wait_for(page, chart, lambda p: len(p) == 2 and p["#1"][1] < loss)
    assert math.isclose(shown["#1"][1], math.log10(loss), rel_tol=1e-4)  # the chart is log too
    page.locator("#runs-scale").get_by_text("linear").click()
    wait_for(page, chart, lambda p: len(p) == 2 and math.isclose(p["#1"][1], loss, rel_tol=1e-4))

    # The Train tab: the curve of the run picked, with its x axis, on the first change.
    page.get_by_role("tab", name="Train").click()
    run_pick = page.locator("#train-run input")
    run_pick.click()
    run_pick.fill(a["id"])
    page.get_by_role("option", name=a["id"], exact=True).click()
    chart = "#train-curve"
    wait_for(page, chart, lambda p: "loss" in p and p["loss"][0] == step)
    expect(page.locator("#train-status .legend-item").first).to_be_visible()
    page.locator("#train-x").get_by_text("tokens seen").click()
    wait_for(page, chart, lambda p: "loss" in p and p["loss"][0] == tokens)
    page.get_by_role("radio", name="日本語").check()
    expect(page.locator("#train-status .chart-legend")).to_contain_text("学習損失", timeout=ms(10))
    page.close()


def test_the_train_tab_opens_on_the_current_run_with_its_curve(browser, app):  # noqa: F811
    """A page opened or reloaded after a run started shows that run picked, its status and its
    curve, without a click (here the newest run; a training one is preferred)."""
    from playwright.sync_api import expect

    from studio.runs.store import list_runs
    from studio.workspace import open_workspace

    runs = list_runs(open_workspace(app["workspace"]))
    if not runs:
        train(app["workspace"])
        runs = list_runs(open_workspace(app["workspace"]))
    newest = runs[0]
    page = browser.new_page()
    page.goto(app["url"])
    page.get_by_role("tab", name="Train").click()
    expect(page.locator("#train-run input")).to_have_value(newest.id, timeout=ms(30))
    expect(page.locator("#train-status")).to_contain_text(newest.id)
    wait_for(page, "#train-curve", lambda p: "loss" in p)
    # The axis titles would be the data's column names ("x", "value"): hidden, and the
    # caption names the axes in the page's language.
    expect(page.locator("#train-status .chart-axes")).to_contain_text("training and eval")
    titles = page.locator("#train-curve .role-axis-title")
    assert titles.count() >= 2
    assert all(not titles.nth(i).is_visible() for i in range(titles.count()))
    # A series with one point (a single evaluation) is drawn as a dot, not left out.
    evals = [line for line in newest.metrics() if line.get("kind") == "eval"]
    if len(evals) == 1:
        dot = page.locator('#train-curve svg .mark-line path[aria-label*="series: eval_loss"]')
        assert "L" not in (dot.get_attribute("d") or "L")
        assert dot.evaluate("p => getComputedStyle(p).strokeWidth") == "7px"
    page.close()
