"""Run configs from JSON: the trainer's TuneConfig and DataConfig, checked field by field.

An admin's request carries plain JSON; the run must never reach a worker with a value the
trainer cannot use. Each field is checked for its type (taken from the dataclass default) and
its range, and the errors name the field as the API shows it (`config.lr`, `data.eval_split`),
so the client knows exactly what to fix. The checked values then build the trainer's own
frozen config, which is what the worker will run.
"""

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from django.conf import settings

from common.errors import ApplicationError
from trainer.data.shapes import ShapesConfig
from trainer.train.config import BASELINES, CREDITS, DataConfig, TuneConfig

Rule = tuple[Callable[[Any], bool], str]
T = TypeVar("T")

EVAL_SPLITS = ("val", "test")
PROJECT_IMAGES = "project"  # data `source`: the run's project's own items

TUNE_RULES: dict[str, Rule] = {
    "steps": (lambda v: v >= 1, "must be at least 1"),
    "batch_size": (lambda v: v >= 1, "must be at least 1"),
    "samples": (lambda v: v >= 1, "must be at least 1"),
    "baseline": (lambda v: v in BASELINES, f"must be one of {', '.join(BASELINES)}"),
    "credit": (lambda v: v in CREDITS, f"must be one of {', '.join(CREDITS)}"),
    "lr": (lambda v: 0 < v < 1, "must be above 0 and below 1"),
    "readout_lr": (lambda v: 0 <= v < 1, "must be 0 or more and below 1"),
    "warmup": (lambda v: v >= 0, "must be 0 or more"),
    "temperature": (lambda v: v > 0, "must be above 0"),
    "kl_coef": (lambda v: v >= 0, "must be 0 or more"),
    "grad_clip": (lambda v: v > 0, "must be above 0"),
    "seed": (lambda v: v >= 0, "must be 0 or more"),
    "log_every": (lambda v: v >= 1, "must be at least 1"),
    "threads": (lambda v: v >= 0, "must be 0 or more"),
    "processes": (lambda v: v >= 1, "must be at least 1"),  # batch_size: TuneConfig's check
}

DATA_RULES: dict[str, Rule] = {
    "min_objects": (lambda v: v >= 1, "must be at least 1"),
    "max_objects": (lambda v: v >= 1, "must be at least 1"),
    "eval_images": (lambda v: v >= 1, "must be at least 1"),
    "eval_split": (lambda v: v in EVAL_SPLITS, f"must be one of {', '.join(EVAL_SPLITS)}"),
}


def _typed(value: Any, expected: type) -> bool:
    if isinstance(value, bool):  # JSON true is not a number
        return expected is bool
    if expected is float:
        return isinstance(value, int | float) and math.isfinite(value)
    return isinstance(value, expected)


def _checked(
    config_type: type, values: Any, rules: dict[str, Rule], prefix: str
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The known fields of `values` that pass, and the errors of the others by field name."""
    if not isinstance(values, dict):
        return {}, {prefix: ["must be a JSON object"]}
    fields = {f.name: f for f in dataclasses.fields(config_type)}
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}.{key}"
        if key not in fields:
            errors[name] = [f"unknown setting; known: {', '.join(sorted(fields))}"]
            continue
        expected = type(fields[key].default)
        if not _typed(value, expected):
            errors[name] = [f"must be a {'number' if expected is float else expected.__name__}"]
            continue
        check, message = rules.get(key, (lambda v: True, ""))
        if not check(value):
            errors[name] = [f"{message}, got {value!r}"]
            continue
        clean[key] = float(value) if expected is float else value
    return clean, errors


def _build(config_type: type, clean: dict[str, Any], prefix: str) -> Any:
    try:
        return config_type(**clean)
    except (TypeError, ValueError) as error:  # the trainer config's own checks
        # Its messages start with the field's name ("lr must be positive"): point at it.
        message = str(error)
        named = [f.name for f in dataclasses.fields(config_type) if message.startswith(f.name)]
        field = f"{prefix}.{max(named, key=len)}" if named else prefix
        raise ApplicationError(f"{field}: {message}", field=field) from None


def _raise(errors: dict[str, list[str]]) -> None:
    if errors:
        field, messages = next(iter(errors.items()))
        raise ApplicationError(f"{field}: {messages[0]}", errors=errors)


def config_from_json(
    config_type: type[T], values: Any, *, prefix: str, rules: dict[str, Rule] | None = None,
    fixed: dict[str, Any] | None = None,
) -> T:
    """A trainer config from JSON: types and `rules` checked per field, then the config's own
    checks; `fixed` fields are the platform's to set (refused in `values`)."""
    clean, errors = _checked(config_type, values, rules or {}, prefix)
    for key in fixed or {}:
        if key in clean:
            errors[f"{prefix}.{key}"] = ["is set by the platform, not by the request"]
    _raise(errors)
    return _build(config_type, {**clean, **(fixed or {})}, prefix)


def tune_config_from(values: Any) -> TuneConfig:
    """The TuneConfig of a run from its JSON (missing fields keep the trainer's defaults)."""
    config = config_from_json(TuneConfig, values, prefix="config", rules=TUNE_RULES)
    if config.baseline != "none" and config.samples < 2:
        raise ApplicationError(
            f"config.samples: the {config.baseline!r} baseline needs at least 2 samples per image",
            field="config.samples",
        )
    return config


def data_dir_path(data_dir: str) -> Path:
    """A COCO folder is named relative to MEDIA_ROOT: an admin cannot read the server's files."""
    root = Path(settings.MEDIA_ROOT).resolve()
    path = (root / data_dir).resolve()
    if not path.is_relative_to(root):
        raise ApplicationError("data.data_dir: must be a folder under the media root",
                               field="data.data_dir")
    if not (path / "instances.json").is_file():
        raise ApplicationError(
            f"data.data_dir: no instances.json in {data_dir!r} (under the media root)",
            field="data.data_dir",
        )
    return path


def on_project_images(values: Any) -> bool:
    """Whether a run's data JSON asks for the project's own images (`"source": "project"`)."""
    return isinstance(values, dict) and values.get("source") == PROJECT_IMAGES


def data_config_from(values: Any) -> DataConfig:
    """The DataConfig of a run from its JSON: Synthetic Shapes, a COCO folder that `data_dir`
    names, or with `"source": "project"` the project's own images, which the worker exports to
    a folder of the run (`tuning.project_data`) and names as `data_dir` (left empty here)."""
    if isinstance(values, dict) and "source" in values:
        if not on_project_images(values):
            raise ApplicationError(
                f"data.source: must be {PROJECT_IMAGES!r} (the project's own images); leave it "
                "out for Synthetic Shapes or a data_dir folder", field="data.source")
        rest = {key: value for key, value in values.items() if key != "source"}
        return config_from_json(DataConfig, rest, prefix="data", rules=DATA_RULES,
                                fixed={"data_dir": ""})
    config = config_from_json(DataConfig, values, prefix="data", rules=DATA_RULES)
    if config.data_dir:
        data_dir_path(config.data_dir)  # checked here; resolved by the worker (its MEDIA_ROOT)
    if not config.data_dir:
        try:
            ShapesConfig(min_objects=config.min_objects, max_objects=config.max_objects)
        except ValueError as error:
            raise ApplicationError(f"data.min_objects: {error}", field="data.min_objects"
                                   ) from None
    return config
