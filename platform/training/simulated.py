"""Simulated annotators: answer a project's queue through the same API as people, preferring
outputs by a hidden gold score (the detection metric against the item's ground truth) with a
stated noise (`trainer.reward_model.simulate`: Bradley-Terry pairs, Plackett-Luce rankings,
ordinal ratings).

They are users named `simulated-<project>-<n>`, annotators of the project with no usable
password, so their answers are told apart from people's by name in every export. Tests and
benchmarks use them; they never stand in for human data.
"""

import uuid
from dataclasses import dataclass

import torch
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from rest_framework.test import APIClient

from common.errors import ApplicationError
from projects.models import Item, Project, RatingMode, Role, VisionTask
from projects.services import membership_set
from trainer.reward_model.simulate import (
    DEFAULT_NOISE,
    gold_scores,
    simulate_preferences,
    simulate_rankings,
    simulate_ratings,
)
from training.feedback import boxes_from_outputs, class_indices

_CHOICE = {1.0: "A", 0.0: "B", 0.5: "tie"}


@dataclass
class SimulationReport:
    answered: int = 0
    skipped: int = 0  # tasks whose item has no ground truth to judge by


def simulated_annotators(project: Project, count: int) -> list[AbstractBaseUser]:
    """The project's first `count` simulated annotators (made on first use)."""
    users = []
    for index in range(count):
        user, created = get_user_model().objects.get_or_create(
            username=f"simulated-{project.pk}-{index}")
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        membership_set(project=project, user=user, role=Role.ANNOTATOR)
        users.append(user)
    return users


def _api_host() -> str:
    """A host name the site accepts (the API client's requests pass host validation)."""
    for host in settings.ALLOWED_HOSTS:
        if host not in ("*", "") and not host.startswith("."):
            return host
    return "localhost"


def _answer(project: Project, task: dict, noise: float, generator: torch.Generator
            ) -> dict | None:
    """What a simulated annotator answers to a task screen (None: no ground truth)."""
    item = Item.objects.get(pk=task["item"]["id"])
    truth = item.ground_truth.get("objects") if isinstance(item.ground_truth, dict) else None
    if not truth:
        return None
    size = (item.width, item.height)
    class_of = class_indices(project)
    shown = task["candidates"]
    pred = boxes_from_outputs([c["output"] for c in shown], [size] * len(shown), class_of)
    gt = boxes_from_outputs([{"objects": truth}] * len(shown), [size] * len(shown), class_of)
    gold = gold_scores(pred.boxes, pred.classes, pred.valid, gt.boxes, gt.classes, gt.valid)
    if project.rating_mode == RatingMode.SCALE:
        return {"score": int(simulate_ratings(gold[:1], noise=noise, generator=generator))}
    if project.rating_mode == RatingMode.PAIRWISE:
        label = simulate_preferences(gold[:1], gold[1:2], noise=noise, generator=generator)
        return {"choice": _CHOICE[float(label)]}
    order = simulate_rankings(gold[None], noise=noise, generator=generator)[0]
    return {"ranking": [shown[int(i)]["id"] for i in order]}


def _check(response, expected: tuple[int, ...]) -> dict | None:
    if response.status_code not in expected:
        detail = response.json().get("detail", "") if response.content else ""
        raise ApplicationError(f"{response.request['PATH_INFO']} answered "
                               f"{response.status_code}: {detail}")
    return response.json() if response.content else None


def answer_queue(
    project: Project, user: AbstractBaseUser, *, noise: float = DEFAULT_NOISE, seed: int = 0,
    limit: int | None = None,
) -> SimulationReport:
    """Answer the user's queue in the project through the REST API until it is empty (or
    `limit` answers)."""
    if project.task != VisionTask.DETECTION:
        raise ApplicationError(f"Simulated annotators judge detection outputs; this project's "
                               f"task is {project.task}.", field="project")
    if noise < 0:
        raise ApplicationError("noise must be 0 (a perfect annotator) or more.", field="noise")
    client = APIClient(HTTP_HOST=_api_host())
    client.force_authenticate(user)
    generator = torch.Generator().manual_seed(seed)
    report = SimulationReport()
    while limit is None or report.answered < limit:
        task = _check(client.get(f"/api/projects/{project.pk}/next-task/"), (200, 204))
        if task is None:
            break
        answer = _answer(project, task, noise, generator)
        if answer is None:
            _check(client.post(f"/api/tasks/{task['id']}/skip/"), (200, 204))
            report.skipped += 1
            continue
        _check(client.post(f"/api/tasks/{task['id']}/answer/",
                           {"answer": answer, "idempotency_key": str(uuid.uuid4())},
                           format="json"), (201,))
        report.answered += 1
    return report
