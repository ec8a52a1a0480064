"""Tasks from a project's candidates: what one screen shows, made once per set of candidates."""

import random
from collections.abc import Iterator
from itertools import combinations

from django.db import transaction

from labeling.models import Task, TaskCandidate
from labeling.selectors import forget_task_total
from projects.models import Candidate, Project, RatingMode


def task_key(candidate_ids: list[int]) -> str:
    """A task's identity: its sorted candidate ids, so one set of candidates is one task."""
    return ",".join(str(i) for i in sorted(candidate_ids))


def key_candidate_ids(key: str) -> list[int]:
    """A task's candidate ids, in ascending order, from its key."""
    return [int(part) for part in key.split(",")]


def _candidate_groups(mode: str, ids: list[int], k: int) -> Iterator[list[int]]:
    """The candidate sets one item's candidates make into tasks, for the rating mode."""
    if mode == RatingMode.SCALE:
        yield from ([i] for i in ids)
    elif mode == RatingMode.PAIRWISE:
        # Candidates of one item differ in model version or sample (the candidate_unique key).
        yield from (list(pair) for pair in combinations(ids, 2))
    elif len(ids) >= 2:
        if len(ids) <= k:
            yield list(ids)
            return
        # Groups of k; the last one reaches back so every candidate is ranked at least once.
        for start in range(0, len(ids), k):
            yield list(ids[start:start + k]) if start + k <= len(ids) else list(ids[-k:])


@transaction.atomic
def tasks_create(*, project: Project) -> int:
    """Make the tasks the project's candidates call for; tasks that exist are kept (idempotent).

    Returns how many tasks were created. Screen order (A/B, ...) is shuffled per task, seeded by
    the task's key, so no model always sits on the same side.
    """
    # The project's row lock serialises two imports of one project; the unique key backs it.
    Project.objects.select_for_update().filter(pk=project.pk).exists()
    by_item: dict[int, list[int]] = {}
    for candidate_id, item_id in (
        Candidate.objects.filter(item__project=project)
        .order_by("item_id", "id")
        .values_list("id", "item_id")
    ):
        by_item.setdefault(item_id, []).append(candidate_id)
    existing = set(Task.objects.filter(project=project).values_list("key", flat=True))
    planned: list[tuple[Task, list[int]]] = []
    for item_id, ids in by_item.items():
        for group in _candidate_groups(project.rating_mode, ids, project.ranking_k):
            key = task_key(group)
            if key in existing:
                continue
            existing.add(key)
            order = sorted(group)
            random.Random(f"{project.pk}:{key}").shuffle(order)
            task = Task(project=project, item_id=item_id, key=key,
                        answers_needed=project.overlap)
            planned.append((task, order))
    Task.objects.bulk_create([task for task, _ in planned], batch_size=500)
    forget_task_total(project.pk)
    transaction.on_commit(lambda: forget_task_total(project.pk))
    TaskCandidate.objects.bulk_create(
        [
            TaskCandidate(task=task, candidate_id=candidate_id, position=position)
            for task, order in planned
            for position, candidate_id in enumerate(order)
        ],
        batch_size=1000,
    )
    return len(planned)
