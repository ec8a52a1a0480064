"""Model versions' checkpoints, checked before anything is queued on them (tuning runs, new
candidates, reward models started from a policy)."""

from common.errors import ApplicationError
from projects.models import ModelVersion, Project, VisionTask
from trainer.train.checkpoint import Checkpoint, CheckpointError, load_checkpoint


def check_detection_checkpoint(project: Project, version: ModelVersion, field: str) -> Checkpoint:
    """The version is the project's and has a Tunelab detection checkpoint for its classes:
    returns it, loaded (on the CPU). Refusals name `field`."""
    if version.project_id != project.pk:
        raise ApplicationError("The model version belongs to another project.", field=field)
    if project.task != VisionTask.DETECTION:
        raise ApplicationError(
            f"Tunelab trains detection models; this project's task is {project.task}.",
            field=field,
        )
    if not version.checkpoint:
        raise ApplicationError(
            f"{version.name} has no checkpoint (imported outputs have no model).", field=field
        )
    try:
        checkpoint = load_checkpoint(version.checkpoint.path)
    except CheckpointError as error:
        # The loader names foreign files, e.g. a checkpoint of another task's model.
        raise ApplicationError(f"{version.name}: {error}", field=field) from None
    if project.categories and len(project.categories) != len(checkpoint.class_names):
        raise ApplicationError(
            f"{version.name} detects {len(checkpoint.class_names)} classes; the project has "
            f"{len(project.categories)} categories.",
            field=field,
        )
    return checkpoint
