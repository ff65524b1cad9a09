"""One reading of a setting's value for run configs, encoding settings and pipelines."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.data.clean import PipelineError, pipeline_from_rows
from studio.labels.encode import EncodingSettings
from studio.settings import as_bool, as_int
from studio.train import presets
from studio.train.config import ConfigError


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("yes", True), ("ON", True), ("1", True), (1, True),
     ("✓", True), ("off", False), ("No", False), (0, False), ("false", False)],
)  # fmt: skip
def test_the_three_kinds_of_settings_agree_on_what_is_true(value, expected):
    assert as_bool(value) is expected
    config, _ = presets.load("cpu-demo-sft")
    assert config.with_overrides({"allow_blocked": value}).allow_blocked is expected
    assert EncodingSettings.from_dict({"add_eos": value}).add_eos is expected
    (step,) = pipeline_from_rows([[value, "nfkc", ""]]).steps
    assert step.enabled is expected


@pytest.mark.parametrize("value", ["maybe", 2, "", None, [True]])
def test_and_refuse_the_same_values(value):
    with pytest.raises(ValueError, match="true or false"):
        as_bool(value, "flag")
    config, _ = presets.load("cpu-demo-sft")
    with pytest.raises(ConfigError):
        config.with_overrides({"allow_blocked": value})
    if value is not None:  # an empty encoding setting means "the default"
        with pytest.raises(ValueError):
            EncodingSettings.from_dict({"add_eos": value})
    if value not in ("", None):  # an empty table cell is an unticked box
        with pytest.raises(PipelineError, match="step 1"):
            pipeline_from_rows([[value, "nfkc", ""]])


def test_whole_numbers_are_read_one_way():
    assert as_int(512) == as_int(512.0) == as_int("512") == as_int(" 512 ") == 512
    for bad in (True, 512.5, "lots", None):
        with pytest.raises(ValueError, match="whole number"):
            as_int(bad, "max_length")
    assert EncodingSettings.from_dict({"max_length": "512"}).max_length == 512
    with pytest.raises(ValueError, match="max_length"):
        EncodingSettings.from_dict({"max_length": 512.5})


def test_a_fields_help_is_the_docstring_written_under_it():
    from dataclasses import dataclass

    from studio.settings import field_docs, field_help

    @dataclass
    class Sample:
        plain: int = 1
        helped: str = "x"
        """What it does,
        over two lines."""
        after: bool = False

    assert field_docs(Sample) == {
        "plain": "",
        "helped": "What it does, over two lines.",
        "after": "",
    }
    assert field_help(Sample, "helped", lang="ja") == "What it does, over two lines."  # no ja


def test_every_setting_has_help_in_both_languages_from_one_place():
    import yaml

    from studio import settings
    from studio.train.config import describe_settings

    english = describe_settings("en")
    japanese = {row["setting"]: row["help"] for row in describe_settings("ja")}
    assert len(english) > 50
    for row in english:
        assert row["help"] and row["help"].isascii(), row["setting"]
        ja = japanese[row["setting"]]
        assert ja != row["help"] and any("\u3040" <= ch <= "\u30ff" for ch in ja), row["setting"]
    folder = Path(settings.__file__).parent / "locales" / "help"
    kept = yaml.safe_load((folder / "ja.yaml").read_text(encoding="utf-8"))
    assert set(kept) == set(japanese), "translations of fields that do not exist"


def test_the_cli_lists_the_settings_with_the_train_tabs_help(tmp_path, capsys):
    import json

    from studio.cli import main
    from studio.train.config import setting_help

    assert main(["train", "--settings", "ja", "--json", "--workspace", str(tmp_path)]) == 0
    rows = {r["setting"]: r for r in json.loads(capsys.readouterr().out)["settings"]}
    assert rows["lora.r"]["help"] == setting_help("lora.r", "ja")
    assert rows["training.learning_rate"]["default"] == 2e-4
    assert rows["encoding.max_length"]["takes"] == "an integer"
    assert main(["train", "--settings", "--workspace", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "training.gradient_accumulation_steps  (an integer; default 1)" in text
    assert setting_help("training.gradient_accumulation_steps")[:40] in text
