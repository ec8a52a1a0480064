"""A run's data from its project's own images: the launch's checks.

A learned reward scores outputs without ground truth, so a run can tune on the images its
project rates (`"data": {"source": "project"}`), which usually have none; the worker exports them
(`training.project_images`). The metric reward scores outputs against ground truth, so it needs
it on every image.
"""

from common.errors import ApplicationError
from projects.models import Project
from projects.selectors import items_of
from tuning.models import RewardKind

FIELD = "data.source"


def check_project_images(project: Project, reward: str) -> None:
    """Refuse a run on the project's images that could not train: no items, no categories
    for the model's classes, or the metric reward where ground truth is missing."""
    items = items_of(project)
    total = items.count()
    if not total:
        raise ApplicationError("data.source: the project has no items (import images first).",
                               field=FIELD)
    if not project.categories:
        raise ApplicationError("data.source: the project has no categories to name the "
                               "model's classes (import COCO instances first).", field=FIELD)
    missing = items.filter(ground_truth__isnull=True).count()
    if reward == RewardKind.METRIC and missing:
        raise ApplicationError(
            f"data.source: the metric reward scores outputs against ground truth, which "
            f"{missing} of the project's {total} images lack; tune against a learned reward "
            "model, or import their COCO instances.", field=FIELD)
