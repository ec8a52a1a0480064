"""The next round: a ModelVersion's outputs on its project's items, as new candidates to rate.

`candidates_generate` (a service) checks the request and sends the task to the `gpu` queue;
`generate_candidates` (the task's body) decodes every item's image `samples` times and stores
each output as a Candidate, then makes the annotation tasks they call for. Outputs are seeded
by (item batch, sample index), and candidates that exist are skipped, so a task delivered
twice creates each candidate once.
"""

from django.db import transaction

from common.errors import ApplicationError
from config.celery import app as celery_app
from labeling.services.task_creation import tasks_create
from projects.checkpoints import check_detection_checkpoint
from projects.models import Candidate, ModelVersion
from projects.selectors import items_of
from projects.services import candidate_create
from rewards.feedback import item_example
from trainer.train.checkpoint import load_checkpoint
from trainer.train.loops import pick_device
from tuning.samples import detection_outputs

GENERATE_TASK = "tuning.generate_candidates"
MAX_SAMPLES = 16
BATCH = 32


def candidates_generate(*, model_version: ModelVersion, samples: int = 1,
                        temperature: float = 0.0) -> int:
    """Queue the generation; returns how many items will get outputs."""
    project = model_version.project
    check_detection_checkpoint(project, model_version, "model_version")
    if not 1 <= samples <= MAX_SAMPLES:
        raise ApplicationError(f"samples must lie in 1..{MAX_SAMPLES}.", field="samples")
    if temperature < 0:
        raise ApplicationError("temperature must be 0 (greedy) or more.", field="temperature")
    if samples > 1 and temperature == 0:
        raise ApplicationError("Several samples need a temperature above 0 (greedy decoding "
                               "gives the same output each time).", field="temperature")
    items = items_of(project).count()
    if not items:
        raise ApplicationError("The project has no items to run the model on.",
                               field="model_version")
    version_id = model_version.pk
    transaction.on_commit(lambda: celery_app.send_task(
        GENERATE_TASK, args=[version_id, samples, temperature]))
    return items


def generate_candidates(model_version_id: int, *, samples: int, temperature: float) -> int:
    """Store the version's outputs for every item of its project; returns how many were new."""
    version = ModelVersion.objects.select_related("project").get(pk=model_version_id)
    project = version.project
    model, task = load_checkpoint(version.checkpoint.path).build(pick_device())
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
