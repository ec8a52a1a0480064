"""The classes a project's reward model draws outputs with, from the project's categories.

A reward model numbers classes contiguously. Detection: every category, in the order of their
COCO ids (as the trainer's COCO sources number them). Panoptic: the thing categories in that
order, class k at map position k + 1; the category named "background" (as Synthetic Shapes'
panoptic files and the models' outputs name it) is position 0. Captioning and colorization
outputs have no classes.
"""

from projects.models import Project, VisionTask

BACKGROUND = "background"


def class_categories(project: Project) -> list[dict]:
    """The categories that are the reward model's classes, in class order."""
    by_id = sorted(project.categories or [], key=lambda category: category["id"])
    if project.task == VisionTask.DETECTION:
        return by_id
    if project.task == VisionTask.PANOPTIC:
        return [category for category in by_id if category.get("name") != BACKGROUND]
    return []


def needs_categories(project: Project) -> bool:
    """Whether the project's outputs name categories (detection, panoptic)."""
    return project.task in (VisionTask.DETECTION, VisionTask.PANOPTIC)
