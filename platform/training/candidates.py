"""The next round's candidates, decoded on the worker (the body of the generate task).

`generate_candidates` decodes every item's image `samples` times and stores each output as a
Candidate, then makes the annotation tasks they call for. Outputs are seeded by (item batch,
sample index), and candidates that exist are skipped, so a task delivered twice creates each
candidate once.
"""

from django.db import transaction

from labeling.services.task_creation import tasks_create
from projects.models import Candidate, ModelVersion
from projects.selectors import items_of
from projects.services import candidate_create
from trainer.train.loops import pick_device
from training.checkpoints import load_version
from training.feedback import item_example
from training.samples import detection_outputs
from tuning.candidates import MAX_SAMPLES

BATCH = 32


def generate_candidates(model_version_id: int, *, samples: int, temperature: float) -> int:
    """Store the version's outputs for every item of its project; returns how many were new."""
    version = ModelVersion.objects.select_related("project").get(pk=model_version_id)
    project = version.project
    model, task = load_version(version).build(pick_device())
    category_ids = sorted(category["id"] for category in project.categories)
    done = set(Candidate.objects.filter(model_version=version)
               .values_list("item_id", "sample_index"))
    items = list(items_of(project))
    created = 0
    for start in range(0, len(items), BATCH):
        chunk = items[start : start + BATCH]
        examples = [item_example(item) for item in chunk]
        for index in range(samples):
            outputs = detection_outputs(model, task, examples, category_ids,
                                        temperature=temperature, seed=start * MAX_SAMPLES + index)
            with transaction.atomic():
                for item, output in zip(chunk, outputs, strict=True):
                    if (item.pk, index) not in done:
                        candidate_create(item=item, model_version=version, output=output,
                                         sample_index=index)
                        created += 1
    tasks_create(project=project)
    return created
