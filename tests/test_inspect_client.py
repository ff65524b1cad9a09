"""The Inspect tab through gradio_client, on `python app.py` as a user starts it."""

import pytest

from studio.paths import SAMPLE_DATA_DIR

pytestmark = [pytest.mark.client, pytest.mark.slow]

BROKEN = SAMPLE_DATA_DIR / "teaching" / "chat_ojousama_broken.jsonl"
# stage, loss, max_length, truncation, packing, add_eos, special, pad, response marker,
# mask pad id, chat template
DEFAULTS = ["sft", "auto", 1024, "right", "off", True, "auto", "", "", False, ""]
SEED_SETTINGS = ["sft", "assistant", 256, "right", "off", True, "yes", "<|im_end|>", "", True, ""]


@pytest.fixture(scope="module")
def client(running_app):
    from gradio_client import Client

    return Client(running_app["url"], analytics_enabled=False, verbose=False)


def scan(client, dataset, settings, lang="en"):
    return client.predict(dataset, "tsumugi-tiny", *settings, lang, api_name="/inspect_scan")


def test_bundled_chat_set_is_clean_and_rows_show_trained_tokens(client):
    summary, histogram, diagnostics, _, _ = scan(client, "sample-chat-ojousama/v0001", DEFAULTS)
    assert "330 rows" in summary
    assert "<svg" in histogram
    assert "No problems found" in diagnostics
    tokens, trained = client.predict(
        "sample-chat-ojousama/v0001",
        "tsumugi-tiny",
        0,
        1,
        False,
        *DEFAULTS,
        "en",
        api_name="/inspect_row",
    )
    assert 'class="tok tok-trained' in tokens and 'class="tok tok-masked' in tokens
    assert "わたくし" in trained and "&lt;|im_end|&gt;" in trained
    assert "あなたは名家に育った" not in trained  # the system prompt carries no loss


def test_upload_the_broken_variant_fix_settings_and_repair_data(client):
    from gradio_client import handle_file

    dataset, message = client.predict(handle_file(str(BROKEN)), "en", api_name="/inspect_upload")
    assert "120 rows" in message
    spec = dataset if isinstance(dataset, str) else dataset["value"]
    assert spec.startswith("chat_ojousama_broken/")

    _, _, diagnostics, _, _ = scan(client, spec, SEED_SETTINGS)
    for code in (
        "eos_masked",  # reported once: not again as eos_missing
        "foreign_end_marker",  # <|endoftext|>: another family's EOS, ordinary text here
        "double_bos",
        "template_drift",
        "special_token_in_text",
        "no_trained_tokens",
        "response_truncated",
    ):
        assert f'data-code="{code}"' in diagnostics, code

    status, profile, *fixed = client.predict(
        spec, "tsumugi-tiny", "default", *SEED_SETTINGS, "en", api_name="/inspect_apply_fixes"
    )
    assert 'data-code="eos_missing"' not in diagnostics
    assert "Saved" in status
    fixed_settings = dict(
        zip(
            [
                "stage",
                "loss",
                "max_length",
                "truncation",
                "packing",
                "add_eos",
                "special",
                "pad",
                "marker",
                "mask",
                "template",
            ],
            fixed,
            strict=True,
        )
    )
    assert fixed_settings["special"] == "auto" and fixed_settings["mask"] is False
    assert fixed_settings["pad"] == "<pad>" and fixed_settings["max_length"] > 256

    status, repaired = client.predict(
        spec, "tsumugi-tiny", *fixed, "en", api_name="/inspect_repair_data"
    )
    new_spec = repaired if isinstance(repaired, str) else repaired["value"]
    assert new_spec != spec and "unchanged" in status
    summary, _, diagnostics, _, _ = scan(client, new_spec, fixed)
    assert "118 rows" in summary
    assert "No problems found" in diagnostics


def test_scan_messages_follow_the_language(client):
    _, _, diagnostics, _, _ = scan(client, "teaching-chat-broken/v0001", SEED_SETTINGS, lang="ja")
    assert "エラー" in diagnostics and "eos_masked" in diagnostics


def test_a_looping_template_is_refused_and_the_app_keeps_answering(client):
    """A chat template that would loop for ever is tried in a child process first; the
    scan says why it is refused, and the app answers everyone else as before."""
    from tests.conftest import generate_args
    from tests.test_hostile import LOOPING_TEMPLATE

    looping = [*DEFAULTS[:-1], LOOPING_TEMPLATE]
    with pytest.raises(Exception, match="did not finish rendering"):
        scan(client, "sample-chat-ojousama/v0001", looping)
    text, _ = client.predict(**generate_args(max_new_tokens=4), api_name="/generate")
    assert text
