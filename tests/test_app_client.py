"""Start `python app.py` as a user would and drive it through gradio_client."""

import json
from pathlib import Path

import pytest

from studio.ui.data_tab import MAP_FIELDS
from tests.conftest import generate_args

pytestmark = [pytest.mark.client, pytest.mark.slow]


@pytest.fixture(scope="module")
def client(running_app):
    from gradio_client import Client

    return Client(running_app["url"], analytics_enabled=False, verbose=False)


def test_serves(running_app):
    # How fast it starts is bench/startup.py's to measure; here only that it answers.
    import urllib.request

    with urllib.request.urlopen(running_app["url"] + "config", timeout=60) as response:
        assert response.status == 200 and "Tsumugi" in response.read().decode("utf-8")


def test_generate_through_the_api_is_deterministic(client):
    kwargs = generate_args(prompt="富士山は", max_new_tokens=16, greedy=True)
    text, stats = client.predict(**kwargs, api_name="/generate")
    again, _ = client.predict(**kwargs, api_name="/generate")
    assert text and text == again
    assert "tokens" in stats


def test_generate_reports_in_japanese(client):
    kwargs = generate_args(
        prompt="抹茶は",
        chat=True,
        system="丁寧に答えてください。",
        max_new_tokens=8,
        seed=1,
        lang="ja",
    )
    _, stats = client.predict(**kwargs, api_name="/generate")
    assert "トークン" in stats


def test_load_model_describes_the_embedded_model(client):
    # gr.State outputs stay on the server: the client gets the six visible outputs.
    status, overview, tokens, template, template_stats, notes = client.predict(
        model="tsumugi-tiny", trust_remote_code=False, lang="en", api_name="/load_model"
    )
    assert "LlamaForCausalLM" in overview
    assert "im_end" in tokens and "im_start" in tokens
    assert template.startswith("<s><|im_start|>system")
    assert "tsumugi-tiny" in status


def test_bad_model_is_a_clear_error_and_the_app_survives(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="HF_HUB_OFFLINE"):
        client.predict(
            model="nobody/offline-model",
            trust_remote_code=False,
            lang="en",
            api_name="/load_model",
        )
    text, _ = client.predict(
        **generate_args(prompt="今日は", max_new_tokens=4), api_name="/generate"
    )
    assert text


def test_browser_paths_cannot_reach_files_outside(running_app):
    import urllib.error
    import urllib.request

    for path in ("gradio_api/file=/etc/passwd", "file=/etc/passwd", "gradio_api/file=app.py"):
        try:
            with urllib.request.urlopen(running_app["url"] + path, timeout=5) as resp:
                body = resp.read()
        except urllib.error.HTTPError as exc:
            assert exc.code in (403, 404)
            continue
        assert b"root:" not in body and b"def main" not in body


def test_workspace_models_are_loadable_by_name(client, running_app):
    import shutil

    from studio.paths import EMBEDDED_MODEL_DIR

    shutil.copytree(EMBEDDED_MODEL_DIR, running_app["workspace"] / "models" / "my-copy")
    status, overview, *_ = client.predict(
        model="my-copy", trust_remote_code=False, lang="en", api_name="/load_model"
    )
    assert "my-copy" in status and "LlamaForCausalLM" in overview


def test_compare_and_chat_through_the_api(client):
    grid, summary, status, csv_path, md_path, pool = client.predict(
        ["tsumugi-tiny"],
        "富士山は\n抹茶は",
        False,
        "",
        8,
        True,
        0.8,
        0.95,
        1.0,
        0,
        "en",
        api_name="/compare_models",
    )
    assert "Done: 2 replies (0 failed)" in status
    assert grid.count("<tr>") == 3  # header and two prompts
    assert summary["data"][0][0] == "tsumugi-tiny"
    assert Path(md_path).read_text(encoding="utf-8").startswith("| prompt | tsumugi-tiny |")
    assert "tsumugi-tiny" in pool

    args = ["tsumugi-tiny", None, "こんにちは", [], [], "丁寧に", 6, True, 0.7, 0.9, 0, 1.0, 0]
    hist_a, hist_b, warn_a, warn_b, message, *_ = client.predict(*args, "en", api_name="/chat")
    assert [m["role"] for m in hist_a] == ["user", "assistant"] and hist_b == []
    assert "6 tokens" in warn_a and "limit" in warn_a and message == ""
    path = client.predict(hist_a, hist_b, "丁寧に", "en", api_name="/chat_export")
    path = path["value"] if isinstance(path, dict) else path
    first = json.loads(Path(path).read_text(encoding="utf-8").splitlines()[0])
    assert [m["role"] for m in first["messages"]] == ["system", "user", "assistant"]


def test_a_clean_that_removes_most_rows_is_saved_only_when_pressed_again(client, running_app):
    """The Clean tab through the API: a QA set through the ja (web corpus) preset would lose
    most rows; the first press saves nothing and says why, the same press again saves."""
    from gradio_client import handle_file

    from studio.data.clean import TABLE_HEADERS, pipeline_to_rows, pipeline_words, preset

    ws = running_app["workspace"]
    qa = ws / "qa-for-clean.jsonl"
    rows = [{"prompt": f"質問{i}は？", "completion": f"答え{i}です。"} for i in range(9)]
    rows.append({"prompt": "富士山について", "completion": "富士山は静岡県と山梨県にまたがる日本一高い山で、"
                 "標高は3776メートルです。夏には多くの登山者が山頂を目指し、ご来光を見るために夜から登る"
                 "人もいます。"})  # fmt: skip
    qa.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    no_map = [None] * len(MAP_FIELDS)
    text = client.predict(handle_file(str(qa)), "", None, "qa-clean", None, False, *no_map,
                          "en", api_name="/data_import")  # fmt: skip
    spec = "qa-clean/v0001"
    assert spec in text, text
    pipeline = preset("ja")
    steps = {"headers": TABLE_HEADERS, "data": pipeline_to_rows(pipeline)}
    words = pipeline_words(pipeline)
    first = client.predict(spec, steps, words, 1, False, "en", api_name="/data_clean")
    assert first[0].startswith("⚠️ Not saved: this pipeline would remove 9 of 10 rows"), first[0]
    assert not (ws / "datasets" / "qa-clean" / "v0002").exists()
    again = client.predict(spec, steps, words, 1, False, "en", api_name="/data_clean")
    assert "qa-clean/v0002" in again[0], again[0]


def test_a_malformed_row_is_explained_in_japanese(client, tmp_path):
    """The row's problem, not only its line number, is in the page's language."""
    from gradio_client import handle_file

    ragged = tmp_path / "ragged.csv"
    ragged.write_text("text,id\nok,1\ntoo,many,fields\n", encoding="utf-8")
    no_map = [None] * len(MAP_FIELDS)
    with pytest.raises(Exception) as refused:  # gr.Error reaches the client as an exception
        client.predict(handle_file(str(ragged)), "", None, None, None, False, *no_map, "ja",
                       api_name="/data_import")  # fmt: skip
    said = str(refused.value)
    assert "3 行目: 項目が 3 個あります（見出し行は 2 個）" in said, said
    assert "fields where the header" not in said
    found = client.predict(handle_file(str(ragged)), "", "ja", api_name="/data_check")
    assert "3 行目: 項目が 3 個あります" in found[0], found[0]
