"""Model versions' checkpoints, checked before anything is queued on them (tuning runs, new
candidates, reward models started from a policy), from the columns a worker wrote when it read
the file (`training.checkpoints`): no request opens a checkpoint."""

from common.errors import ApplicationError
from projects.models import CheckpointState, ModelVersion, Project, VisionTask


def check_detection_checkpoint(project: Project, version: ModelVersion, field: str) -> None:
    """The version is the project's and has a Tunelab detection checkpoint for its classes.
    Refusals name `field`."""
    if version.project_id != project.pk:
        raise ApplicationError("The model version belongs to another project.", field=field)
    if project.task != VisionTask.DETECTION:
        raise ApplicationError(
            f"Tunelab trains detection models; this project's task is {project.task}.",
            field=field,
        )
    state = version.checkpoint_state
    if state == CheckpointState.NONE:
        raise ApplicationError(
            f"{version.name} has no checkpoint (imported outputs have no model).", field=field
        )
    if state == CheckpointState.PENDING:
        raise ApplicationError(
            f"{version.name}: its checkpoint has not been read by a worker yet; try again "
            "once a worker is running.", field=field,
        )
    if state == CheckpointState.INVALID:
        raise ApplicationError(f"{version.name}: {version.checkpoint_error}", field=field)
    if version.task != VisionTask.DETECTION:
        raise ApplicationError(f"{version.name} is a {version.task} model, not a detector.",
                               field=field)
    if project.categories and len(project.categories) != len(version.class_names):
        raise ApplicationError(
            f"{version.name} detects {len(version.class_names)} classes; the project has "
            f"{len(project.categories)} categories.",
            field=field,
        )
