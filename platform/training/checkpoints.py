"""Model versions' checkpoint files, read on the worker side only.

A version's checkpoint is read once, when the version gets it (a tuning run's result, an upload
described by a worker, the data migration): what launch checks need — the task, the class
names, the format and the model's size — goes to the version's columns
(`projects.services.DESCRIPTION_FIELDS`), so no request opens the file. `load_version` is how a
job opens it to train or decode.
"""

from pathlib import Path
from typing import Any

from projects.models import ModelVersion
from projects.services import model_version_describe
from trainer.train.checkpoint import FORMAT, Checkpoint, CheckpointError, load_checkpoint


def describe(checkpoint: Checkpoint) -> dict[str, Any]:
    """A loaded checkpoint's description, as the version's column values."""
    parameters = sum(int(value.numel()) for value in checkpoint.state.values()
                     if hasattr(value, "numel"))
    return {"task": checkpoint.task_name, "class_names": list(checkpoint.class_names),
            "checkpoint_format": FORMAT, "parameters": parameters,
            "input_size": checkpoint.model_config.image_size}


def read_description(path: str | Path) -> tuple[dict[str, Any] | None, str]:
    """The description of the checkpoint at `path`, or None and why it cannot be used."""
    try:
        return describe(load_checkpoint(path)), ""
    except CheckpointError as error:
        return None, str(error)


def describe_version(version: ModelVersion) -> None:
    """Read the version's checkpoint file once and write its description (or why it cannot be
    used: a foreign, damaged or missing file) to the version's columns."""
    description, error = (read_description(version.checkpoint.path) if version.checkpoint
                          else (None, ""))
    model_version_describe(version=version, description=description, error=error)


def describe_version_id(version_id: int) -> None:
    """The body of the describe task: the version may be gone by the time it runs."""
    version = ModelVersion.objects.filter(pk=version_id).first()
    if version is not None:
        describe_version(version)


def load_version(version: ModelVersion) -> Checkpoint:
    """The version's checkpoint, loaded on the CPU."""
    return load_checkpoint(version.checkpoint.path)
