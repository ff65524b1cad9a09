"""One error type: every error a user can cause is a StudioError with a stable code; the
front ends show it one way, and a bug is told as one, with a log of its traceback."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr
import pytest

from studio.errors import StudioError, crash_report
from studio.i18n import catalog


def test_every_packages_user_errors_are_studio_errors_with_stable_codes():
    from studio.data.ingest import IngestError
    from studio.data.store import DataError
    from studio.models.load import ModelLoadError
    from studio.runs.store import RunError
    from studio.safety import UnsafeInputError
    from studio.train.config import ConfigError
    from studio.train.start import TooLarge

    for cls in (IngestError, DataError, ModelLoadError, RunError, UnsafeInputError, ConfigError,
                TooLarge):  # fmt: skip
        assert issubclass(cls, StudioError), cls
    assert issubclass(ConfigError, ValueError)  # the old bases stay: old handlers still catch
    assert ModelLoadError.code == "model_load_error" and IngestError.code == "ingest_error"
    error = RunError("no run named x", code="no_such_run", run="x")
    assert error.to_dict() == {
        "type": "RunError",
        "code": "no_such_run",
        "message": "no run named x",
    }


def test_text_is_localised_when_the_locales_have_the_code(monkeypatch):
    monkeypatch.setitem(
        catalog(), "errors.no_such_run", {"ja": "実行 {run} はありません", "en": "no run {run}"}
    )
    error = StudioError("no run named x", code="no_such_run", run="x")
    assert error.text("ja") == "実行 x はありません" and error.text("en") == "no run x"
    assert StudioError("as raised", code="unknown_code").text("ja") == "as raised"


def test_a_crash_report_holds_the_traceback(tmp_path):
    try:
        {}["missing"]
    except KeyError as exc:
        path = crash_report(exc, "test", tmp_path)
    assert path.parent == tmp_path and "KeyError: 'missing'" in path.read_text()


def test_the_cli_tells_a_bug_as_one_with_its_log(tmp_path, capsys, monkeypatch):
    from studio import cli

    def broken(args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(cli.workspace, "cmd_env", broken)
    (tmp_path / "ws").mkdir()
    code = cli.main(["env", "--json", "--workspace", str(tmp_path / "ws")])
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["ok"] is False and out["error"]["code"] == "unexpected"
    log = out["error"]["log"]
    assert log.startswith(str(tmp_path / "ws" / "logs"))
    assert "ZeroDivisionError" in Path(log).read_text(encoding="utf-8")
    code = cli.main(["env", "--workspace", str(tmp_path / "ws")])
    err = capsys.readouterr().err
    assert code == 1 and "did not expect (ZeroDivisionError" in err and "Traceback" not in err


def test_the_cli_reports_a_studio_error_with_its_code(tmp_path, capsys):
    from studio.cli import main

    code = main(["runs", "show", "nope", "--json", "--workspace", str(tmp_path / "ws")])
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["error"]["code"] == "no_such_run" and "nope" in out["error"]["message"]


def test_the_ui_shows_every_error_one_way(tmp_path):
    from studio.ui.errors import ShownError, shown_errors

    def refuse(name, lang):
        raise StudioError(f"no dataset {name}")

    def crash(name, lang):
        raise KeyError(name)

    def stream(lang):
        yield "first"
        raise KeyError("later")

    with pytest.raises(ShownError, match="no dataset corpus"):
        shown_errors(refuse, tmp_path)("corpus", "ja")
    with pytest.raises(ShownError) as told:
        shown_errors(crash, tmp_path)("corpus", lang="ja")
    message = str(told.value)
    assert "予期しないエラー" in message and "Something went wrong" not in message  # its language
    (log,) = tmp_path.glob("crash-app-*.log")
    assert str(log) in message and "KeyError: 'corpus'" in log.read_text()
    steps = shown_errors(stream, tmp_path)("en")
    assert next(steps) == "first"
    with pytest.raises(ShownError, match="did not expect"):
        next(steps)
    with pytest.raises(gr.Error, match="as raised"):  # a Gradio error passes as it is
        shown_errors(lambda: (_ for _ in ()).throw(gr.Error("as raised")), tmp_path)()


def test_common_refusals_are_said_in_the_pages_language(workspace):
    from studio.data.registry import find_version
    from studio.runs.store import RunError, open_run
    from studio.ui.errors import error_text

    with pytest.raises(RunError) as no_run:
        open_run(workspace, "20261207-nope")
    assert error_text(no_run.value, "ja").startswith("実行 20261207-nope は ")
    assert error_text(no_run.value, "en") == str(no_run.value)  # English as raised
    with pytest.raises(LookupError) as no_data:  # still a LookupError for old handlers
        find_version(workspace, "nothing/v0001")
    assert no_data.value.code == "no_such_dataset"
    assert "データセット nothing/v0001 はワークスペースにありません" in error_text(
        no_data.value, "ja"
    )
    assert error_text(OSError("disk full"), "ja") == "disk full"  # not ours: as raised


@pytest.mark.parametrize(
    ("data", "code", "field"),
    [
        ({"method": "lorax"}, "not_a_choice", "method"),
        ({"lora": {"r": 0}}, "must_be_positive", "lora.r"),
        ({"validation_split": 1.5}, "bad_share", "validation_split"),
        ({"training": {"weight_decay": -1}}, "must_not_be_negative", "training.weight_decay"),
        ({"lora": {"rank": 8}}, "unknown_fields", "rank"),
        ({"training": {"max_steps": "many"}}, "wrong_type", "training.max_steps"),
        ({"allow_blocked": "maybe"}, "wrong_type", "allow_blocked"),
        ({"encoding": {"packing": "tight"}}, "not_a_choice", "packing"),
        ({"training": {"max_steps": 0, "num_train_epochs": 0}}, "no_length", "max_steps"),
    ],
)
def test_config_mistakes_carry_a_code_and_are_said_in_japanese(data, code, field):
    from studio.train.config import ConfigError, RunConfig

    with pytest.raises(ConfigError) as caught:
        RunConfig.from_dict(data)
    error = caught.value
    assert error.code == code
    ja, en = error.text("ja"), error.text("en")
    assert field in ja and field in en and ja != en
    assert any("\u3040" <= ch <= "\u30ff" for ch in ja)  # kana: really Japanese


def test_a_setting_that_is_not_true_or_false_is_named_in_both_languages():
    from studio.errors import InputError
    from studio.settings import as_bool, as_int

    with pytest.raises(InputError) as caught:
        as_bool("maybe", "add_eos")
    assert caught.value.code == "not_true_false" and "add_eos" in caught.value.text("ja")
    with pytest.raises(ValueError) as caught:  # still a ValueError for old callers
        as_int(2.5, "max_length")
    assert caught.value.code == "not_whole_number" and "max_length" in caught.value.text("ja")
