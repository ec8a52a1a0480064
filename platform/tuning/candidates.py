"""The next round: a ModelVersion's outputs on its project's items, as new candidates to rate.

`candidates_generate` (a service) checks the request and sends the task to the `gpu` queue,
whose worker decodes the items (`training.candidates`).
"""

from django.db import transaction

from common.errors import ApplicationError
from config.celery import app as celery_app
from projects.checkpoints import check_task_checkpoint
from projects.models import ModelVersion
from projects.selectors import items_of

GENERATE_TASK = "tuning.generate_candidates"
MAX_SAMPLES = 16


def candidates_generate(*, model_version: ModelVersion, samples: int = 1,
                        temperature: float = 0.0) -> int:
    """Queue the generation; returns how many items will get outputs."""
    project = model_version.project
    check_task_checkpoint(project, model_version, "model_version")
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
