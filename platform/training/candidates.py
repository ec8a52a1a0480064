"""The next round's candidates, decoded on the worker (the body of the generate task).

`generate_candidates` decodes every item's image `samples` times with the version's model and
stores each output, in the API's format of the project's task (`training.outputs`), as a
Candidate, then makes the annotation tasks they call for. Outputs are seeded by (item batch,
sample index), and candidates that exist are skipped (their files are not written again), so a
task delivered twice creates each candidate once.

The files of colorized images and panoptic maps go to `projects/<id>/outputs/<token>/`, a
folder named by a random token per generation: annotators, who are served these files, must
not tell from a URL which model made an output.
"""

import secrets

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from labeling.services.task_creation import tasks_create
from projects.models import Candidate, ModelVersion, Project
from projects.selectors import items_of
from projects.services import candidate_create
from trainer.train.loops import pick_device
from training.checkpoints import load_version
from training.outputs import Picture, Store, task_outputs
from tuning.candidates import MAX_SAMPLES

BATCH = 32


def _outputs_store(project: Project, written: list[str]) -> Store:
    """Files of the project's outputs, each under a folder of its own whose random name tells
    annotators nothing of the model that made it; `written` collects their names."""

    def store(name: str, data: bytes) -> str:
        folder = f"projects/{project.pk}/outputs/{secrets.token_hex(8)}"
        path = default_storage.save(f"{folder}/{name}", ContentFile(data))
        written.append(path)
        return default_storage.url(path)

    return store


def generate_candidates(model_version_id: int, *, samples: int, temperature: float) -> int:
    """Store the version's outputs for every item of its project; returns how many were new."""
    version = ModelVersion.objects.select_related("project").get(pk=model_version_id)
    project = version.project
    checkpoint = load_version(version)
    model, task = checkpoint.build(pick_device())
    outputs = task_outputs(checkpoint.task_name, model, task, class_names=checkpoint.class_names,
                           categories=sorted(project.categories, key=lambda c: c["id"]))
    done = set(Candidate.objects.filter(model_version=version)
               .values_list("item_id", "sample_index"))
    written: list[str] = []
    store = _outputs_store(project, written)
    items = list(items_of(project))
    created = 0
    try:
        for start in range(0, len(items), BATCH):
            chunk = items[start : start + BATCH]
            pictures = [Picture.from_file(item.image.path, item.pk) for item in chunk]
            for index in range(samples):
                decoded = outputs.decode(pictures, temperature=temperature,
                                         seed=start * MAX_SAMPLES + index)
                with transaction.atomic():
                    for item, picture, raw in zip(chunk, pictures, decoded, strict=True):
                        if (item.pk, index) not in done:
                            output = outputs.output(raw, picture, store, f"{item.pk}-{index}")
                            candidate_create(item=item, model_version=version, output=output,
                                             sample_index=index)
                            created += 1
                written.clear()  # committed: the candidates point at them
    except BaseException:
        for name in written:  # files of candidates that were rolled back
            default_storage.delete(name)
        raise
    tasks_create(project=project)
    return created
