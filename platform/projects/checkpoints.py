"""Model versions' checkpoints, checked before anything is queued on them (tuning runs, new
candidates, reward models started from a policy), from the columns a worker wrote when it read
the file (`training.checkpoints`): no request opens a checkpoint.

Tunelab trains a model of each of the four tasks; a version serves a project when its model is
of the project's task and its classes fit the project's categories: a detector's classes are
the categories in the order of their ids (as many of each), a panoptic model's things are
named by the categories (`training.outputs` maps them by name; the background maps to a
category named "background" where there is one). Captions and colours name no category.
"""

from common.errors import ApplicationError
from projects.models import CheckpointState, ModelVersion, Project, VisionTask

MODEL_NOUN = {VisionTask.DETECTION: "detector", VisionTask.CAPTIONING: "captioning model",
              VisionTask.COLORIZATION: "colorization model",
              VisionTask.PANOPTIC: "panoptic segmentation model"}


def check_task_checkpoint(project: Project, version: ModelVersion, field: str) -> None:
    """The version is the project's and has a Tunelab checkpoint of the project's task whose
    classes fit the project's categories. Refusals name `field`."""
    if version.project_id != project.pk:
        raise ApplicationError("The model version belongs to another project.", field=field)
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
    if version.task != project.task:
        raise ApplicationError(
            f"{version.name} is a {version.task} model, not a {MODEL_NOUN[project.task]}.",
            field=field,
        )
    if project.task == VisionTask.DETECTION:
        _check_detected_classes(project, version, field)
    elif project.task == VisionTask.PANOPTIC:
        _check_segmented_classes(project, version, field)


def _check_detected_classes(project: Project, version: ModelVersion, field: str) -> None:
    if project.categories and len(project.categories) != len(version.class_names):
        raise ApplicationError(
            f"{version.name} detects {len(version.class_names)} classes; the project has "
            f"{len(project.categories)} categories.",
            field=field,
        )


def _check_segmented_classes(project: Project, version: ModelVersion, field: str) -> None:
    if not project.categories:
        return  # the outputs name the model's own categories until an import brings some
    names = {category["name"] for category in project.categories}
    missing = [name for name in version.class_names if name not in names]
    if missing:
        raise ApplicationError(
            f"{version.name} segments {', '.join(missing)}, which the project's categories "
            "do not name.", field=field,
        )
