"""Writes for projects: creating projects, members, items, model versions and candidates.

Every function is keyword-only, runs atomically and raises ApplicationError for input the
platform refuses. The import (ingest) and the demo build projects with these, so the same rules
hold whichever way rows arrive.
"""

import io

from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.db import transaction
from PIL import Image

from common.errors import ApplicationError
from common.jobs import job_enqueue
from projects.models import (
    Candidate,
    Item,
    Membership,
    ModelVersion,
    Project,
    RatingMode,
    Role,
    VisionTask,
)


@transaction.atomic
def project_create(
    *,
    name: str,
    task: str,
    rating_mode: str,
    overlap: int = 1,
    ranking_k: int = 3,
    instructions: str = "",
    categories: list[dict] | None = None,
    created_by: AbstractBaseUser | None = None,
) -> Project:
    """A new project; its creator (when given) becomes its admin."""
    if task not in VisionTask.values:
        raise ApplicationError(f"Unknown task {task!r}; one of {VisionTask.values}.", field="task")
    if rating_mode not in RatingMode.values:
        raise ApplicationError(
            f"Unknown rating mode {rating_mode!r}; one of {RatingMode.values}.",
            field="rating_mode",
        )
    if overlap < 1:
        raise ApplicationError("Overlap must be at least 1.", field="overlap")
    if ranking_k < 2:
        raise ApplicationError("A ranking shows at least 2 outputs.", field="ranking_k")
    if Project.objects.filter(name=name).exists():
        raise ApplicationError(f"A project named {name!r} exists.", field="name")
    project = Project.objects.create(
        name=name, task=task, rating_mode=rating_mode, overlap=overlap, ranking_k=ranking_k,
        instructions=instructions, categories=categories or [], created_by=created_by,
    )
    if created_by is not None:
        Membership.objects.create(project=project, user=created_by, role=Role.ADMIN)
    return project


@transaction.atomic
def membership_set(*, project: Project, user: AbstractBaseUser, role: str) -> Membership:
    """Make `user` a member of `project` with `role` (changing the role of a member)."""
    if role not in Role.values:
        raise ApplicationError(f"Unknown role {role!r}; one of {Role.values}.", field="role")
    membership, _ = Membership.objects.update_or_create(
        project=project, user=user, defaults={"role": role}
    )
    return membership


@transaction.atomic
def item_create(
    *, project: Project, file_name: str, image: bytes, ground_truth: dict | list | None = None
) -> Item:
    """An item with its image stored under MEDIA_ROOT (width and height read from the file)."""
    if Item.objects.filter(project=project, file_name=file_name).exists():
        raise ApplicationError(
            f"An item named {file_name!r} exists in this project.", field="file_name"
        )
    try:
        with Image.open(io.BytesIO(image)) as decoded:
            decoded.load()
            width, height = decoded.size
    except (OSError, Image.DecompressionBombError) as error:
        raise ApplicationError(
            f"{file_name} is not an image we can read ({error}).", field="image"
        ) from None
    item = Item(project=project, file_name=file_name, ground_truth=ground_truth)
    item.image.save(file_name.replace("/", "_"), ContentFile(image), save=False)
    # Set after the file: the ImageField's own update reads a consumed buffer and finds None.
    item.width, item.height = width, height
    item.save()
    return item


def model_version_get_or_create(
    *, project: Project, name: str, description: str = ""
) -> ModelVersion:
    """The project's model version called `name`, created on first use."""
    version, _ = ModelVersion.objects.get_or_create(
        project=project, name=name, defaults={"description": description}
    )
    return version


def candidate_create(
    *, item: Item, model_version: ModelVersion, output: dict, sample_index: int = 0
) -> Candidate:
    """One model output for one item; the same (item, model, sample) twice is refused."""
    if model_version.project_id != item.project_id:
        raise ApplicationError(
            "The model version belongs to another project.", field="model_version"
        )
    if not isinstance(output, dict):
        raise ApplicationError("A candidate's output is a JSON object.", field="output")
    if Candidate.objects.filter(
        item=item, model_version=model_version, sample_index=sample_index
    ).exists():
        raise ApplicationError(
            f"{model_version.name} already has output #{sample_index} for {item.file_name}.",
            field="sample_index",
        )
    return Candidate.objects.create(
        item=item, model_version=model_version, output=output, sample_index=sample_index
    )


DESCRIBE_TASK = "projects.describe_checkpoint"
DESCRIPTION_FIELDS = ("task", "class_names", "checkpoint_format", "parameters", "input_size")


def model_version_describe(*, version: ModelVersion, description: dict | None, error: str
                           ) -> None:
    """Write what a worker read of the version's checkpoint: its description's columns
    (`DESCRIPTION_FIELDS`), or none and why the file cannot be used."""
    values = description or {"task": "", "class_names": [], "checkpoint_format": "",
                             "parameters": None, "input_size": None}
    for name in DESCRIPTION_FIELDS:
        setattr(version, name, values[name])
    version.checkpoint_error = error
    version.save(update_fields=[*DESCRIPTION_FIELDS, "checkpoint_error"])


@transaction.atomic
def model_version_checkpoint_changed(*, version: ModelVersion) -> None:
    """The version has a new checkpoint file (an upload): forget the old description and have
    a worker read the file once the transaction commits."""
    model_version_describe(version=version, description=None, error="")
    if version.checkpoint:
        job_enqueue(DESCRIBE_TASK, version.pk)
