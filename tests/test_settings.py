"""One reading of a setting's value for run configs, encoding settings and pipelines."""

from __future__ import annotations

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
