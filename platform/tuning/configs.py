"""Run configs from JSON: the trainer's own config dataclasses, their errors as 400s.

An admin's request carries plain JSON; the run must never reach a worker with a value the
trainer cannot use. The rules of every value live in the trainer's torch-free
`trainer.configs` (each dataclass checks its fields' types and ranges when built); this module
only refuses keys the dataclass does not have or that the platform sets itself, and turns a
`ConfigError` into an ApplicationError naming the field as the API shows it (`config.lr`,
`data.eval_split`), so the client knows exactly what to fix.

A run's data is named by its source, never by a path: Synthetic Shapes (the default) or, with
`"source": "project"`, the run's own project's images, which the worker exports to a folder of
the run (`training.project_images`). A run can read no other folder.
"""

import dataclasses
from typing import Any, TypeVar

from common.errors import ApplicationError
from trainer.configs import ConfigError, DataConfig, TuneConfig

T = TypeVar("T")

PROJECT_IMAGES = "project"  # data `source`: the run's project's own items


def config_from_json(
    config_type: type[T], values: Any, *, prefix: str, fixed: dict[str, Any] | None = None,
) -> T:
    """A trainer config from JSON (missing fields keep the trainer's defaults); `fixed` fields
    are the platform's to set (refused in `values`)."""
    if not isinstance(values, dict):
        raise ApplicationError(f"{prefix}: must be a JSON object", field=prefix)
    known = {f.name for f in dataclasses.fields(config_type)}
    errors: dict[str, list[str]] = {}
    for key in values:
        if key not in known:
            errors[f"{prefix}.{key}"] = [f"unknown setting; known: {', '.join(sorted(known))}"]
        elif key in (fixed or {}):
            errors[f"{prefix}.{key}"] = ["is set by the platform, not by the request"]
    if not errors:
        try:
            return config_type(**{**values, **(fixed or {})})
        except ConfigError as error:
            errors = {f"{prefix}.{name}": [why] for name, why in error.errors.items()}
    field, messages = next(iter(errors.items()))
    raise ApplicationError(f"{field}: {messages[0]}", errors=errors)


def tune_config_from(values: Any) -> TuneConfig:
    """The TuneConfig of a run from its JSON."""
    return config_from_json(TuneConfig, values, prefix="config")


def on_project_images(values: Any) -> bool:
    """Whether a run's data JSON asks for the project's own images (`"source": "project"`)."""
    return isinstance(values, dict) and values.get("source") == PROJECT_IMAGES


def data_config_from(values: Any) -> DataConfig:
    """The DataConfig of a run from its JSON: Synthetic Shapes, or with `"source": "project"`
    the project's own images (the worker names their exported folder as `data_dir`)."""
    if isinstance(values, dict) and "source" in values:
        if not on_project_images(values):
            raise ApplicationError(
                f"data.source: must be {PROJECT_IMAGES!r} (the project's own images); leave it "
                "out for Synthetic Shapes", field="data.source")
        values = {key: value for key, value in values.items() if key != "source"}
    if isinstance(values, dict) and "data_dir" in values:
        raise ApplicationError(
            "data.data_dir: a run reads no folder by path; name its data by source: leave it "
            f"out for Synthetic Shapes, or \"source\": {PROJECT_IMAGES!r} for the project's "
            "own images", field="data.data_dir")
    return config_from_json(DataConfig, values or {}, prefix="data")
