"""Preference pairs through the running app's API (gradio_client): the Compare tab's grid of
the embedded model and an adapter over it, rows marked 1, 2 and = and saved; a two-model
chat turn chosen and saved. The versions read back as form `preference`."""

from __future__ import annotations

import pytest

from tests.conftest import app_process, make_adapter

pytestmark = [pytest.mark.client, pytest.mark.slow]

PROMPTS = ["富士山の高さは？", "お茶の淹れ方は？", "こんにちは。"]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    ws = tmp_path_factory.mktemp("pref-ws")
    make_adapter(ws / "models" / "demo-adapter", seed=5)  # a second model in seconds
    with app_process(ws, tmp_path_factory.mktemp("pref-log") / "app.log") as running:
        yield running


def client_of(app):
    from gradio_client import Client

    return Client(app["url"], analytics_enabled=False, verbose=False)


def test_mark_a_compare_grid_and_save_it_as_a_preference_version(app):
    from gradio_client.exceptions import AppError

    from studio.compare import read_comparison
    from studio.data.preference import pairs_from_marks
    from studio.data.records import dataset_file, iter_records
    from studio.data.store import resolve
    from studio.workspace import open_workspace

    client = client_of(app)
    with pytest.raises(AppError, match="Run a comparison first"):
        client.predict("demo-adapter", "tsumugi-tiny", 1, "en", api_name="/compare_mark_1")
    grid, _, status, csv_path, *_ = client.predict(
        ["tsumugi-tiny", "demo-adapter"], "\n".join(PROMPTS), True, "丁寧に答えてください。",
        12, True, 0.8, 0.95, 1.0, 0, "en", api_name="/compare_models",
    )  # fmt: skip
    assert "Done: 6 replies (0 failed)" in status, status
    csv_path = csv_path["value"] if isinstance(csv_path, dict) else csv_path
    # The grid's CSV, read back by the library: a CSV does not say it was chat.
    comparison = read_comparison(csv_path, chat=True, system="丁寧に答えてください。")
    assert comparison["models"] == ["tsumugi-tiny", "demo-adapter"]

    first, second = "demo-adapter", "tsumugi-tiny"  # reply 1 is the adapter's
    with pytest.raises(AppError, match="same model"):
        client.predict(first, first, 1, "en", api_name="/compare_mark_1")
    row, view, progress = client.predict(first, second, 1, "en", api_name="/compare_mark_1")
    assert row == 2 and "Row 2 of 3" in view and "Marked 1 of 3 rows: 1 pairs" in progress
    row, view, progress = client.predict(first, second, row, "en", api_name="/compare_mark_2")
    assert row == 3 and "Marked 2 of 3 rows: 2 pairs" in progress
    row, view, progress = client.predict(first, second, row, "en", api_name="/compare_mark_tie")
    assert "Marked 3 of 3 rows: 2 pairs, 1 ties" in progress and "Every row is marked" in progress
    # marking a row again replaces its mark
    _, view, progress = client.predict(first, second, 3, "en", api_name="/compare_mark_tie")
    assert "Marked 3 of 3 rows" in progress and "marked: a tie" in view

    with pytest.raises(AppError, match="is not a valid name"):
        client.predict("../outside", "en", api_name="/compare_save_preference")
    said = client.predict("grid-prefs", "en", api_name="/compare_save_preference")
    marks = [
        {"prompt_index": 0, "chosen": first, "rejected": second},
        {"prompt_index": 1, "chosen": second, "rejected": first},
        {"prompt_index": 2, "tie": True},
    ]
    expected, counts = pairs_from_marks(comparison, marks)
    assert counts["pairs"] >= 1, comparison["cells"]  # the adapter answers differently
    assert f"Saved {counts['pairs']} pairs as preference dataset grid-prefs/v0001" in said, said
    version = resolve(open_workspace(app["workspace"]), "grid-prefs/v0001")
    assert version.format == "preference" and version.source == "compare tab"
    records = list(iter_records(dataset_file(version)))
    assert {r.format for r in records} == {"preference"}
    got = [{k: r.data[k] for k in expected[0]} for r in records]
    assert got == expected  # the tie is not written
    assert records[0].data["prompt"][0] == {"role": "system", "content": "丁寧に答えてください。"}


def test_choose_the_better_of_two_chat_replies_and_save_the_pairs(app):
    from gradio_client.exceptions import AppError

    from studio.chat import plain_messages
    from studio.data.records import dataset_file, iter_records
    from studio.data.store import resolve
    from studio.workspace import open_workspace

    client = client_of(app)
    settings = ["丁寧に", 8, True, 0.7, 0.9, 0, 1.0, 0]
    with pytest.raises(AppError, match="Both models must answer"):
        client.predict([], [], "tsumugi-tiny", "demo-adapter", "丁寧に", "en",
                       api_name="/chat_mark_1")  # fmt: skip
    hist_a, hist_b, *_ = client.predict(
        "tsumugi-tiny", "demo-adapter", "こんにちは", [], [], *settings, "en", api_name="/chat"
    )
    assert hist_a[-1]["role"] == hist_b[-1]["role"] == "assistant"
    args = [hist_a, hist_b, "tsumugi-tiny", "demo-adapter", "丁寧に", "en"]
    said = client.predict(*args, api_name="/chat_mark_2")
    assert said.startswith("Chose demo-adapter's reply. Pairs collected here: 1 (0 ties)"), said
    said = client.predict(*args, api_name="/chat_mark_2")  # the same turn again: still one
    assert "Pairs collected here: 1 (0 ties)" in said
    hist_a, hist_b, *_ = client.predict(
        "tsumugi-tiny", "demo-adapter", "抹茶とは？", hist_a, hist_b, *settings, "en",
        api_name="/chat",
    )  # fmt: skip
    said = client.predict(hist_a, hist_b, *args[2:], api_name="/chat_mark_tie")
    assert "Marked as a tie" in said and "Pairs collected here: 1 (1 ties)" in said
    said = client.predict("chat-prefs", "en", api_name="/chat_save_preference")
    assert "Saved 1 pairs as preference dataset chat-prefs/v0001" in said, said
    version = resolve(open_workspace(app["workspace"]), "chat-prefs/v0001")
    (record,) = iter_records(dataset_file(version))
    assert record.format == "preference"
    assert record.data["prompt"] == [
        {"role": "system", "content": "丁寧に"},
        {"role": "user", "content": "こんにちは"},
    ]
    assert (record.data["chosen_model"], record.data["rejected_model"]) == (
        "demo-adapter",
        "tsumugi-tiny",
    )
    assert record.data["chosen"] == plain_messages(args[1])[-1]["content"]
    assert record.data["rejected"] == plain_messages(args[0])[-1]["content"]
    with pytest.raises(AppError, match="No pair to save"):  # saved pairs start a new list
        client.predict("chat-prefs", "en", api_name="/chat_save_preference")


def test_the_train_tab_checks_and_runs_the_dpo_preset_with_its_reward_curves(app):
    """The Train tab with the DPO preset: the check scans the pairs (Japanese too), a short
    run completes, and the live curve's "preference rewards" view draws the rewards."""
    from studio.train import presets
    from studio.ui.train_tab import FIELDS, form_values
    from tests.conftest import wait_state

    client = client_of(app)
    config, _ = presets.load("cpu-demo-dpo")
    values = dict(zip(FIELDS, form_values(config), strict=True))
    head = ["cpu-demo-dpo", "sample-pref-ojousama/v0001", "tsumugi-tiny", "(preset)"]
    form = head + [values[f] for f in FIELDS]
    message, scan, estimate, command = client.predict(*form, "en", api_name="/train_check")
    assert message == "" and "278 rows" in scan and "No problems found" in scan
    assert "Reference model" in estimate and "cpu-demo-dpo" in command
    ja = client.predict(*form, "ja", api_name="/train_check")
    assert "参照モデル" in ja[2]
    values |= {"training.max_steps": 6, "training.eval_steps": 3, "training.save_steps": 3}
    values["preference.loss"] = "ipo"
    message, *_, picked = client.predict(
        *(head + [values[f] for f in FIELDS]), "en", api_name="/train_start"
    )
    assert message.startswith("Started run "), message
    run_id = picked if isinstance(picked, str) else picked["value"]
    wait_state(client, run_id, ["completed"])
    _, plot, log = client.predict(
        run_id, 0.0, "rewards", "step", "linear", "en", api_name="/train_status"
    )
    assert "held-out pairs preferred after training" in log
    config = (app["workspace"] / "runs" / run_id / "config.yaml").read_text()
    assert "loss: ipo" in config
    drawn = {r[2] for r in plot["data"] if r[1] is not None}  # (x, value, series)
    assert {"reward_chosen", "reward_rejected", "reward_margin"} <= drawn, drawn
