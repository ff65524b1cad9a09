"""Open the studio in headless Chromium (Debian's package) through Playwright."""

import json
import os
import re
import shutil
import tempfile

import pytest

from tests.conftest import ms

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = os.environ.get("STUDIO_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    if not shutil.which(CHROMIUM):
        if os.environ.get("STUDIO_REQUIRE_BROWSER"):
            pytest.fail(f"{CHROMIUM} not found, and STUDIO_REQUIRE_BROWSER is set")
        pytest.skip(f"{CHROMIUM} not found (apt-get install -y chromium)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=ms(5))  # the default ceiling of every expect(...)
    profile = tempfile.mkdtemp(prefix="studio-chromium-")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            args=ARGS,
            headless=True,
            locale="en-US",
            viewport={"width": 1400, "height": 1000},
        )
        context.set_default_timeout(ms(30))  # clicks, fills, navigation
        yield context
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


def test_open_switch_language_generate(browser, running_app, artifacts_dir):
    from playwright.sync_api import expect

    page = browser.new_page()
    page.goto(running_app["url"])
    # English from the browser's Accept-Language; a fresh workspace opens on the guide.
    expect(page.get_by_role("tab", name="Start here", selected=True)).to_be_visible(timeout=ms(30))
    page.get_by_role("tab", name="Model").click()
    # The embedded model is described on load.
    expect(page.locator("#model-overview")).to_contain_text("LlamaForCausalLM", timeout=ms(30))
    expect(page.locator("#model-special-tokens")).to_contain_text("<|im_end|>")

    page.get_by_label("日本語").check()
    expect(page.get_by_role("tab", name="モデル")).to_be_visible(timeout=ms(10))
    expect(page.locator("#load-model")).to_have_text("読み込む")
    expect(page.locator("#model-overview")).to_contain_text("パラメータ数")
    # The status follows the language and still reports the loaded model.
    expect(page.locator("#model-status")).to_contain_text("読み込みました")

    page.locator("#prompt textarea").fill("富士山は")
    page.locator("#generate").click()
    output = page.locator("#generated textarea")
    expect(output).not_to_have_value("", timeout=ms(30))
    expect(page.locator("#generation-stats")).to_contain_text("トークン生成")
    page.screenshot(path=str(artifacts_dir / "model-tab-ja.png"), full_page=True)
    assert any("\u3040" <= ch <= "\u9fff" for ch in output.input_value())
    page.close()


def test_model_tab_names_a_real_models_family_and_how_its_turns_are_found(
    browser, running_app, artifacts_dir, request
):
    """A stock Qwen2.5 tokenizer and template (tests/real_families.py) in the Model tab: its
    family, its end-of-turn token, and assistant turns found by rendering, not a warning."""
    import shutil

    from playwright.sync_api import expect

    from tests.real_families import require

    # As a workspace model, picked from the list: an option click is one atomic choice
    # (typing a path races the picker's refresh of its choices when it takes the focus).
    copied = running_app["workspace"] / "models" / "qwen2.5"
    shutil.copytree(require("qwen2.5"), copied)
    request.addfinalizer(lambda: shutil.rmtree(copied, ignore_errors=True))
    page = browser.new_page()
    page.goto(running_app["url"])
    page.get_by_role("tab", name="Model").click(timeout=ms(30))
    expect(page.locator("#model-overview")).to_contain_text("LlamaForCausalLM", timeout=ms(30))
    page.locator("#model-source input").click()
    page.get_by_role("option", name="qwen2.5", exact=True).click()
    page.locator("#load-model").click()
    expect(page.locator("#model-status")).to_contain_text("qwen2.5", timeout=ms(60))
    stats = page.locator("#chat-template-stats")
    expect(stats).to_contain_text("qwen2.5", timeout=ms(60))
    expect(stats).to_contain_text("<|im_end|> (151645)")
    expect(stats).to_contain_text("rendering the template")
    expect(page.locator("#model-notes")).to_contain_text("found by rendering")
    page.screenshot(path=str(artifacts_dir / "model-tab-qwen2.5.png"), full_page=True)
    page.close()


def test_japanese_browser_gets_japanese_ui(browser, running_app, artifacts_dir):
    from playwright.sync_api import expect

    page = browser.new_page()
    page.set_extra_http_headers({"Accept-Language": "ja-JP,ja;q=0.9"})
    page.goto(running_app["url"])
    page.get_by_role("tab", name="モデル").click(timeout=ms(30))
    expect(page.locator("#model-overview")).to_contain_text("アーキテクチャ", timeout=ms(30))
    page.get_by_label("English").check()
    expect(page.get_by_role("tab", name="Model")).to_be_visible(timeout=ms(10))
    page.screenshot(path=str(artifacts_dir / "model-tab-en.png"), full_page=True)
    page.close()


def test_inspect_tab_flags_the_broken_chat_set_and_fixes_it(browser, running_app, artifacts_dir):
    from playwright.sync_api import expect

    from studio.paths import SAMPLE_DATA_DIR

    page = browser.new_page()
    page.goto(running_app["url"])
    page.get_by_role("tab", name="Inspect").click()
    # Upload the teaching example: it becomes a dataset version and is selected.
    page.locator("#inspect-upload input[type=file]").set_input_files(
        str(SAMPLE_DATA_DIR / "teaching" / "chat_ojousama_broken.jsonl")
    )
    expect(page.locator("#inspect-upload-status")).to_contain_text("120 rows", timeout=ms(30))
    # The seed's habit: pad with the end-of-turn token, mask every pad id.
    expect(page.locator("#inspect-dataset input")).to_have_value(
        "chat_ojousama_broken/v0001", timeout=ms(10)
    )
    page.get_by_text("Encoding settings").click()
    pad = page.locator("#inspect-pad-token textarea, #inspect-pad-token input").first
    mask = page.locator("#inspect-mask-pad input")
    # Choosing the uploaded version loads its settings into the form, which can land after
    # the first edit on a busy machine: edit until the form holds the edits.
    for _ in range(5):
        pad.fill("<|im_end|>")
        pad.press("Tab")  # commit the value before the scan reads it
        mask.check()
        try:
            expect(pad).to_have_value("<|im_end|>", timeout=ms(3))
            expect(mask).to_be_checked(timeout=ms(3))
            break
        except AssertionError:
            continue
    expect(pad).to_have_value("<|im_end|>")
    expect(mask).to_be_checked()
    page.wait_for_timeout(300)
    page.locator("#inspect-scan").click()
    expect(page.locator("#inspect-summary")).to_contain_text("120 rows", timeout=ms(30))
    diagnostics = page.locator("#inspect-diagnostics")
    expect(diagnostics.locator('[data-code="eos_masked"]')).to_be_visible(timeout=ms(30))
    expect(diagnostics.locator('[data-code="foreign_end_marker"]')).to_be_visible()
    expect(page.locator("#inspect-summary")).to_contain_text("errors")
    page.screenshot(path=str(artifacts_dir / "inspect-broken-en.png"), full_page=True)

    page.locator("#inspect-fix").click()
    expect(page.locator("#inspect-fix-status")).to_contain_text("Saved", timeout=ms(30))
    expect(page.locator("#inspect-mask-pad input")).not_to_be_checked()
    page.locator("#inspect-repair").click()
    expect(page.locator("#inspect-fix-status")).to_contain_text("unchanged", timeout=ms(30))
    page.locator("#inspect-scan").click()
    expect(diagnostics).to_contain_text("No problems found", timeout=ms(30))

    page.locator("#inspect-show").click()
    tokens = page.locator("#inspect-tokens")
    expect(tokens.locator(".tok-trained").first).to_be_visible(timeout=ms(30))
    expect(page.locator("#inspect-trained")).to_contain_text("<|im_end|>")
    assert "\ufffd" not in tokens.inner_text()  # byte pieces are grouped into characters
    page.screenshot(path=str(artifacts_dir / "inspect-fixed-en.png"), full_page=True)

    page.get_by_label("日本語").check()
    expect(page.get_by_role("tab", name="ラベル検査")).to_be_visible(timeout=ms(10))
    expect(page.locator("#inspect-scan")).to_have_text("データセット全体を検査")
    page.close()


def test_train_tab_check_start_watch_stop_resume(browser, running_app, artifacts_dir):
    """A newcomer's run: the demo preset, checked, started, watched live, stopped, resumed."""
    from playwright.sync_api import expect

    page = browser.new_page()
    page.goto(running_app["url"])
    page.get_by_role("tab", name="Train").click()
    expect(page.locator("#train-preset input")).to_have_value("cpu-demo-sft", timeout=ms(30))
    page.locator("#train-check").click()
    expect(page.locator("#train-estimate .vram")).to_have_attribute(
        "data-fits", "true", timeout=ms(60)
    )
    expect(page.locator("#train-scan")).to_contain_text("330 rows")
    expect(page.locator("#train-command textarea")).to_have_value(
        re.compile(r"^python -m studio train .*cpu-demo-sft")
    )
    steps = page.locator("#train-max-steps input")
    steps.fill("400")
    steps.press("Tab")
    page.wait_for_timeout(300)
    page.locator("#train-start").click()
    expect(page.locator("#train-message")).to_contain_text("Started run", timeout=ms(60))
    status = page.locator("#train-status .run-status")
    expect(status).to_have_attribute("data-state", "running", timeout=ms(60))
    curve = page.locator(
        '#train-curve svg .mark-line path[stroke][aria-label]:not([aria-label*="value: null"])'
    ).first
    expect(curve).to_be_attached(timeout=ms(60))  # the first logged step is drawn

    def step_now():
        match = re.search(r"step (\d+)/400", status.inner_text())
        return int(match.group(1)) if match else 0

    first = step_now()
    page.wait_for_timeout(4000)  # the curve grows without a click
    assert step_now() > first
    expect(status).to_contain_text("ETA")
    page.screenshot(path=str(artifacts_dir / "train-running-en.png"), full_page=True)

    page.locator("#train-stop").click()
    expect(page.locator("#train-message")).to_contain_text("Stopping")
    expect(status).to_have_attribute("data-state", "stopped", timeout=ms(60))
    stopped_at = step_now()
    page.locator("#train-resume").click()
    expect(page.locator("#train-message")).to_contain_text("Resumed", timeout=ms(30))
    expect(status).to_have_attribute("data-state", "running", timeout=ms(60))
    assert step_now() >= stopped_at  # it goes on from the checkpoint, not from zero
    for _ in range(60):
        if step_now() > stopped_at:
            break
        page.wait_for_timeout(500)
    assert step_now() > stopped_at
    page.locator("#train-stop").click()
    expect(status).to_have_attribute("data-state", "stopped", timeout=ms(60))

    page.get_by_label("日本語").check()
    expect(page.get_by_role("tab", name="学習")).to_be_visible(timeout=ms(10))
    expect(page.locator("#train-start")).to_have_text("学習開始")
    expect(status).to_contain_text("停止")
    page.screenshot(path=str(artifacts_dir / "train-stopped-ja.png"), full_page=True)
    page.close()


def test_runs_tab_compares_methods_and_follows_a_live_run(browser, running_app, artifacts_dir):
    """The seed's comparison on the CPU demo: LoRA and full fine-tuning on one dataset, their
    curves overlaid, figures and config diff in one view, while one of them still trains."""
    import subprocess
    import sys

    from playwright.sync_api import expect

    from tests.conftest import REPO, child_env

    def train(*sets, detach=False):
        args = [
            sys.executable,
            "-m",
            "studio",
            "train",
            "cpu-demo-sft",
            "--json",
            "--workspace",
            str(running_app["workspace"]),
        ]
        args += [part for s in sets for part in ("--set", s)] + (["--detach"] if detach else [])
        proc = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300,
                              env=child_env())  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        return json.loads(proc.stdout)["run"]

    lora = train("max_steps=10", "logging_steps=1")
    full = train(
        "method=full",
        "learning_rate=1e-3",
        "max_steps=400",
        "logging_steps=1",
        "save_steps=1000",
        detach=True,
    )
    page = browser.new_page()
    page.goto(running_app["url"])
    page.get_by_role("tab", name="Runs").click()
    table = page.locator("#runs-table")
    expect(table).to_contain_text(lora, timeout=ms(30))
    expect(table).to_contain_text(full)
    picker = page.locator("#runs-select input")
    for run_id in (lora, full):
        picker.click()
        picker.fill(run_id)
        page.get_by_role("option", name=run_id, exact=True).click()
        page.wait_for_timeout(500)
    page.keyboard.press("Escape")
    summary = page.locator("#runs-summary")
    expect(summary).to_contain_text(lora, timeout=ms(30))
    expect(summary).to_contain_text(full)
    expect(page.locator("#runs-diff")).to_contain_text("method")
    expect(page.locator("#runs-diff")).to_contain_text("training.learning_rate")
    # lines with a colour and data (every slot has an empty placeholder line: see ui/plots.py)
    lines = page.locator(
        '#runs-curve svg .mark-line path[stroke][aria-label]:not([aria-label*="value: null"])'
    )
    expect(lines).to_have_count(2, timeout=ms(30))

    def points_of_live_run():
        paths = [lines.nth(i).get_attribute("d") or "" for i in range(lines.count())]
        return max(p.count("L") for p in paths) if paths else 0

    before = points_of_live_run()
    for _ in range(40):  # the live run's line grows without a click
        page.wait_for_timeout(500)
        if points_of_live_run() > before:
            break
    assert points_of_live_run() > before
    page.screenshot(path=str(artifacts_dir / "runs-compare-en.png"), full_page=True)

    page.locator("#runs-scale").get_by_text("log").click()
    expect(page.locator("#runs-caption")).to_contain_text("log10", timeout=ms(10))
    page.locator("#runs-png").click()
    expect(page.locator("#runs-export a").first).to_have_attribute(
        "href", re.compile(r"compare-loss\.png$"), timeout=ms(30)
    )

    subprocess.run(
        [
            sys.executable,
            "-m",
            "studio",
            "train",
            "--stop",
            full,
            "--workspace",
            str(running_app["workspace"]),
        ],
        cwd=REPO,
        env=child_env(),
        timeout=60,
    )
    page.get_by_label("日本語").check()
    expect(page.get_by_role("tab", name="実行履歴")).to_be_visible(timeout=ms(10))
    page.screenshot(path=str(artifacts_dir / "runs-compare-ja.png"), full_page=True)
    page.close()


def test_export_tab_exports_a_run_and_merges_two(browser, running_app, artifacts_dir):
    import subprocess
    import sys

    from playwright.sync_api import expect

    from studio.workspace import open_workspace
    from tests.conftest import REPO, child_env

    def train(seed):
        proc = subprocess.run(
            [sys.executable, "-m", "studio", "train", "cpu-demo-sft", "--json", "--set",
             "max_steps=2", "--set", f"seed={seed}", "--workspace",
             str(running_app["workspace"])],
            cwd=REPO, capture_output=True, text=True, timeout=300, env=child_env(),
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        return json.loads(proc.stdout)["run"]

    first, second = train(11), train(12)
    page = browser.new_page()
    page.goto(running_app["url"])
    page.get_by_role("tab", name="Export & merge").click()
    run_input = page.locator("#export-run input")
    run_input.click()
    run_input.fill(first)
    # The run evaluated its validation split: its best checkpoint is offered beside it.
    expect(page.get_by_role("option", name=f"{first}@best", exact=True)).to_be_visible()
    page.get_by_role("option", name=first, exact=True).click()
    page.locator("#export-name textarea, #export-name input").first.fill("demo-merged")
    page.locator("#export-do").click()
    status = page.locator("#export-status")
    expect(status).to_contain_text("Exported demo-merged", timeout=ms(60))
    expect(status).to_contain_text("2, 5")  # stops on </s> and <|im_end|>
    ws = open_workspace(running_app["workspace"])
    assert (ws.models / "demo-merged" / "model.safetensors").is_file()

    picker = page.locator("#merge-sources input")
    for run_id in (first, second):
        picker.click()
        picker.fill(run_id)
        page.get_by_role("option", name=f"run:{run_id}", exact=True).click()
        page.wait_for_timeout(300)
    page.keyboard.press("Escape")
    page.locator("#merge-weights textarea, #merge-weights input").first.fill("0.7, 0.3")
    page.locator("#merge-name textarea, #merge-name input").first.fill("demo-mix")
    page.locator("#merge-do").click()
    expect(page.locator("#merge-status")).to_contain_text("Made demo-mix", timeout=ms(120))
    expect(page.locator("#merge-recipe")).to_contain_text("weight: 0.7")
    assert "demo-mix" in ws.model_dirs()
    page.screenshot(path=str(artifacts_dir / "export-merge-en.png"), full_page=True)
    page.get_by_label("日本語").check()
    expect(page.get_by_role("tab", name="書き出し・マージ")).to_be_visible(timeout=ms(10))
    page.close()


def pick(page, elem_id: str, option: str) -> None:
    """Choose `option` in the dropdown `elem_id` by typing it and clicking the match."""
    box = page.locator(f"#{elem_id} input")
    box.click()
    box.fill(option)
    page.get_by_role("option", name=option).first.click()
    page.wait_for_timeout(300)


def test_compare_and_chat_tabs(browser, running_app, artifacts_dir):
    from playwright.sync_api import expect

    from studio.workspace import open_workspace
    from tests.conftest import make_adapter

    ws = open_workspace(running_app["workspace"])
    make_adapter(ws.models / "demo-adapter", seed=5)
    page = browser.new_page()
    page.goto(running_app["url"])
    page.get_by_role("tab", name="Compare").click()
    pick(page, "compare-models", "demo-adapter")
    page.keyboard.press("Escape")
    page.locator("#compare-prompts textarea").fill("富士山の高さは？\nお茶の淹れ方は？")
    page.locator("#compare-max-new input").fill("12")
    page.locator("#compare-run").click()
    expect(page.locator("#compare-status")).to_contain_text("Done: ", timeout=ms(90))
    grid = page.locator("#compare-grid table")
    expect(grid.locator("thead th")).to_contain_text(["Prompt", "tsumugi-tiny"])
    expect(grid.locator("thead th").last).to_have_text("demo-adapter")
    expect(grid.locator("tbody tr")).to_have_count(2)
    expect(grid.locator(".cmp-badge").first).to_be_visible()
    expect(page.locator("#compare-csv a")).to_have_attribute("href", re.compile(r"compare\.csv$"))
    expect(page.locator("#compare-md a")).to_have_attribute("href", re.compile(r"compare\.md$"))
    expect(page.locator("#compare-pool")).to_contain_text("demo-adapter")  # shares the base
    page.screenshot(path=str(artifacts_dir / "compare-en.png"), full_page=True)

    page.get_by_role("tab", name="Chat").click()
    pick(page, "chat-model", "demo-adapter")
    pick(page, "chat-model-b", "tsumugi-tiny")
    expect(page.locator("#chat-b")).to_be_visible()
    page.locator("#chat-message textarea").fill("こんにちは。")
    page.locator("#chat-send").click()
    expect(page.locator("#chat-warn-a")).to_contain_text("tokens", timeout=ms(60))
    expect(page.locator("#chat-warn-b")).to_contain_text("tokens", timeout=ms(60))
    expect(page.locator("#chat-a")).to_contain_text("こんにちは。")
    expect(page.locator("#chat-b")).to_contain_text("こんにちは。")
    page.locator("#chat-export").click()
    expect(page.locator("#chat-file a")).to_have_attribute(
        "href", re.compile(r"chat-[\d-]+\.jsonl$"), timeout=ms(10)
    )
    page.locator("#chat-save-ds").click()
    expect(page.locator("#chat-status")).to_contain_text("Saved as dataset chats/v", timeout=ms(10))
    page.screenshot(path=str(artifacts_dir / "chat-en.png"), full_page=True)
    page.get_by_role("radio", name="日本語").check()
    expect(page.get_by_role("tab", name="チャット")).to_be_visible(timeout=ms(10))
    page.close()
