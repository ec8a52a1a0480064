"""Run configs check their own values: every setting a user can send has a range, the rules
that tie settings together live in the dataclass, and the command line prints them as one line
(tests/trainer/test_cli.py).
`trainer.configs` loads no torch, so the platform's web processes can validate with it."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from trainer.configs import (
    READOUTS_OF_TASK,
    REWARD_MODEL_TASKS,
    CaptioningTaskConfig,
    ColorizationTaskConfig,
    ColorizerConfig,
    ConfigError,
    DataConfig,
    DetectionTaskConfig,
    ModelConfig,
    PanopticTaskConfig,
    PretrainConfig,
    RewardModelConfig,
    TuneConfig,
    help_for,
    range_of,
)
from trainer.reward_model.encoders import OUTPUT_ENCODERS

USER_CONFIGS = (ModelConfig, DetectionTaskConfig, CaptioningTaskConfig, ColorizationTaskConfig,
                PanopticTaskConfig, ColorizerConfig, DataConfig, PretrainConfig, TuneConfig,
                RewardModelConfig)


@pytest.mark.parametrize("config_type", USER_CONFIGS, ids=lambda t: t.__name__)
def test_every_numeric_setting_has_a_documented_range(config_type) -> None:
    for field in dataclasses.fields(config_type):
        if isinstance(field.default, bool) or not isinstance(field.default, int | float):
            continue
        rules = field.metadata
        assert ("ge" in rules or "gt" in rules) and ("le" in rules or "lt" in rules), field.name
        assert range_of(config_type, field.name) in help_for(config_type)[field.name]
    config_type()  # the defaults are within their own ranges


@pytest.mark.parametrize("changes, field", [
    ({"steps": 10**12}, "steps"),
    ({"threads": 10**9}, "threads"),
    ({"lr": 0.0}, "lr"),
    ({"lr": float("nan")}, "lr"),
    ({"steps": True}, "steps"),
    ({"steps": "600"}, "steps"),
    ({"baseline": "best"}, "baseline"),
    ({"samples": 1, "baseline": "loo"}, "samples"),
    ({"samples": 1, "baseline": "paper"}, "samples"),
    ({"batch_size": 6, "processes": 4}, "batch_size"),
])
def test_bad_tune_settings_are_refused_naming_the_field(changes, field) -> None:
    with pytest.raises(ConfigError) as error:
        TuneConfig(**changes)
    assert error.value.field == field
    assert str(error.value).startswith(field)


def test_one_sample_per_image_is_fine_without_a_baseline() -> None:
    assert TuneConfig(samples=1, baseline="none").samples == 1


def test_whole_numbers_for_float_settings_become_floats() -> None:
    config = TuneConfig(kl_coef=1, temperature=2)
    assert isinstance(config.temperature, float) and isinstance(config.kl_coef, float)
    assert config.temperature == 2.0


def test_cross_field_rules_of_the_other_configs() -> None:
    with pytest.raises(ConfigError, match="min_objects"):
        DataConfig(min_objects=5, max_objects=2)
    with pytest.raises(ConfigError, match="heads"):
        ModelConfig(d_model=30, heads=4)
    with pytest.raises(ConfigError, match="patch"):
        PanopticTaskConfig(patch=3)


def test_every_reward_model_task_has_readouts_the_trainer_can_build() -> None:
    assert set(REWARD_MODEL_TASKS) == set(READOUTS_OF_TASK)
    for task, readouts in READOUTS_OF_TASK.items():
        if {"boxes", "image"} & set(readouts):  # they draw the output as image channels
            assert task in OUTPUT_ENCODERS, task


def test_the_configs_module_loads_no_torch() -> None:
    code = "import sys, trainer.configs; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"
