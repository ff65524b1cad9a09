"""The Japanese UI has no English left: a Japanese browser walks every tab and sub-tab of a
workspace with a finished run and an imported dataset, and every word in Latin letters it
sees must be a technical term (an allow-list below), a name or an identifier. Also: a
language switch is one round trip, and what was drawn before it follows it."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from studio.data.filters import FILTERS
from studio.train.config import setting_help
from tests.conftest import REPO, child_env, fresh_app, ms
from tests.test_app_browser import ARGS, CHROMIUM

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Terms a Japanese user reads in Latin letters in any Japanese tool: formats, libraries,
# model and token names, acronyms, and the example words the help texts quote.
ALLOWED = set(
    """
    Alpaca BOM BOS CLI CP CPU CSV CUDA EOS EUC Enter Face GB GPU GaLore Git Hugging ID JSON
    JSONL Jaccard KV LSH Lines LlamaForCausalLM LoRA MB Markdown MiB MinHash NFKC NG PNG
    Parquet Python QA QLoRA SFT ShareGPT Shift Shift_JIS TF IDF TSV UI UTF YAML EMAIL PHONE
    ETA API
    bos eos pad unk special chatml cpu float fp bf csv tsv txt json jsonl parquet
    lora qlora galore full llama mergekit peft fastText transformers trl tokenizer tokenize
    generation messages prompt completion text import owner model models workspace evals
    harness results preset run linear ties dare svd slerp ja en mixed true false drop action
    id key value assistant loss sft shot distinct tsumugi cache tokens tmp True collator lr
    batch off isolated concatenated auto cosine constant alpha sqrt AdamW DoRA rsLoRA SVD GiB
    tensorboard trackio wandb config split revision Hub
    PyTorch SDPA FlashAttention Liger Kernel RMSNorm RoPE SwiGLU Qwen Gemma sdpa eager liger
    DPO IPO KTO ORPO SimPO dpo ipo kto orpo simpo preference chosen rejected
    GGUF llama cpp Ollama LM Studio Modelfile
    """.split()  # noqa: SIM905
)
ALLOWED |= set(FILTERS)  # the cleaning filters' names, as pipelines and the CLI write them
# Where the page shows data, logs or code rather than the UI's own words.
DATA_AREAS = "#train-log, #data-rows, #data-sample, code, pre, .cm-editor, textarea, input"
WORD = re.compile(r"[A-Za-z][A-Za-z'_-]*[A-Za-z]|[A-Za-z]")


def english_words(text: str) -> set[str]:
    # Paths, `a/b` alternatives, <tokens> and {flow: mappings} are not sentences.
    text = re.sub(r"\S*/\S*|<[^>\s]*>|\{[^}]*\}|\[[^\]]*\]", " ", text)
    found = set()
    for word in WORD.findall(text):
        if len(word) < 2 or "_" in word or "-" in word or word in ALLOWED:
            continue
        found.add(word)
    return found


def visible_text(page) -> str:
    """What a person sees in the open tabs, without the data and log areas; placeholders
    included."""
    return page.evaluate(
        """(skip) => {
            const root = document.querySelector('#studio-tabs');
            const clone = root.cloneNode(true);
            // hidden tabs are display:none; keep only what is rendered
            const live = root.querySelectorAll('*');
            const copies = clone.querySelectorAll('*');
            for (let i = live.length - 1; i >= 0; i--) {
                const el = live[i];
                if (el.matches(skip) || (el.offsetParent === null && el.tagName !== 'OPTION'))
                    copies[i].remove();
            }
            const holders = [...root.querySelectorAll('[placeholder]')]
                .filter(e => e.offsetParent !== null).map(e => e.placeholder);
            document.body.appendChild(clone);
            clone.style.position = 'absolute'; clone.style.left = '-99999px';
            const text = clone.innerText;
            clone.remove();
            return text + '\\n' + holders.join('\\n');
        }""",
        DATA_AREAS,
    )


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with fresh_app(tmp_path_factory, "japanese") as running:
        ws = running["workspace"]
        for command in (
            ["train", "cpu-demo-sft", "--set", "max_steps=2"],
            ["data", "import", str(REPO / "assets" / "data" / "corpus.jsonl"), "--name", "corpus"],
        ):
            proc = subprocess.run(
                [sys.executable, "-m", "studio", *command, "--workspace", str(ws)],
                cwd=REPO, capture_output=True, text=True, timeout=600, env=child_env(),
            )  # fmt: skip
            assert proc.returncode == 0, proc.stderr[-2000:]
        yield running


@pytest.fixture(scope="module")
def japanese_browser():
    import shutil

    if not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} not found (apt-get install -y chromium)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=ms(5))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = browser.new_context(locale="ja-JP", viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(ms(30))
        yield context
        browser.close()


def settle(page) -> None:
    """Wait until no event of the page is pending (a slow machine answers late)."""
    page.wait_for_timeout(300)
    page.wait_for_function(
        "() => !document.querySelector('#studio-tabs .pending, #studio-tabs .generating')",
        timeout=ms(60),
    )


def test_every_tab_in_japanese_has_no_english_left(japanese_browser, app, artifacts_dir):
    from playwright.sync_api import expect

    page = japanese_browser.new_page()
    page.goto(app["url"])
    expect(page.get_by_role("tab", name="モデル")).to_be_visible(timeout=ms(60))
    top = page.locator("#studio-tabs > .tab-wrapper button[role=tab]")
    names = [top.nth(i).inner_text() for i in range(top.count())]
    assert len(names) == 10, names
    leftovers: dict[str, set[str]] = {}
    widths = {}
    for name in names:
        top.filter(has_text=name).first.click()
        settle(page)
        where = [name]
        inner = page.locator("#studio-tabs .tabitem:visible button[role=tab]")
        subs = [inner.nth(i).inner_text() for i in range(inner.count())] or [None]
        for sub in subs:
            if sub is not None:
                inner.filter(has_text=sub).first.click()
                settle(page)
                where = [name, sub]
            label = "/".join(where)
            if name == "実行履歴" and sub is None:  # a comparison drawn: chart, tables
                picker = page.locator("#runs-select input")
                picker.click()
                page.get_by_role("option").first.click()
                settle(page)
            if name == "学習":  # every field's help too: the advanced ones opened
                page.get_by_text("詳細設定", exact=True).click()
                page.get_by_text("学習中の評価・最良チェックポイント・早期終了").click()
                settle(page)
                for path in ("training.learning_rate", "lora.r", "evaluation.suites"):
                    # the help `train --settings ja` prints, under its field
                    expect(page.get_by_text(setting_help(path, "ja"))).to_be_visible()
            words = english_words(visible_text(page))
            if words:
                leftovers[label] = words
            widths[label] = page.evaluate("() => document.documentElement.scrollWidth")
            page.screenshot(path=str(artifacts_dir / f"ja-{'-'.join(where)}.png"), full_page=True)
    assert not leftovers, f"English in the Japanese UI: {leftovers}"
    # The page never gets wider than the window (a wide table scrolls inside itself).
    assert all(w <= 1400 for w in widths.values()), widths
    page.close()


def test_a_language_switch_is_one_round_trip_and_redraws_results(japanese_browser, app):
    from playwright.sync_api import expect

    page = japanese_browser.new_page()
    page.goto(app["url"])
    expect(page.get_by_role("tab", name="モデル")).to_be_visible(timeout=ms(60))
    page.get_by_role("tab", name="実行履歴").click()
    table = page.locator("#runs-table")
    expect(table).to_contain_text("完了", timeout=ms(30))  # the finished run's state
    settle(page)
    language = page.evaluate(
        "() => window.gradio_config.components.find(c => c.props.elem_id === 'language').id"
    )
    switches = []  # events the language radio triggers (one per tab before issue 20)
    page.on(
        "request",
        lambda r: (
            switches.append(r.post_data)
            if "/queue/join" in r.url
            and json.loads(r.post_data or "{}").get("trigger_id") == language
            else None
        ),
    )
    page.get_by_label("English").check()
    expect(page.get_by_role("tab", name="Runs", exact=True)).to_be_visible(timeout=ms(30))
    # A result drawn before the switch (the runs table) is drawn again in English.
    expect(table).to_contain_text("completed", timeout=ms(30))
    expect(table).not_to_contain_text("完了")
    settle(page)
    assert len(switches) == 1, switches  # every tab's redraw in one event
    page.close()
