"""Simulated annotators: answer a project's queue through the same API as people, preferring
outputs by a hidden gold score, the task's own reward against the item's ground truth, with a
stated noise (`trainer.reward_model.simulate`: Bradley-Terry pairs, Plackett-Luce rankings,
ordinal ratings).

Gold per task (`candidate_gold`):
- detection: the detection reward per ground-truth object (`ground_truth.objects`);
- captioning: CIDEr-D against the item's reference captions (`ground_truth.captions`), its idf
  from the project's references;
- colorization: colourfulness plus the fidelity term against the item's own image, whose
  colours are the truth (every item has it);
- panoptic: PQ against the ground truth's id PNG and segments, read as the feedback datasets
  read maps (`training.feedback.panoptic_map`).

Noise is in the task's gold units, by default the task's (`DEFAULT_NOISES`); gold scores closer
than the task's `TIE_EPS` are a tie. What a noise does is reported as what it does: the share of
decided pairs (a pairwise answer, or two outputs of a ranking) on which the label names the
gold-better output (`label_gold_agreement`). 1-5 ratings bin the gold at detection's fixed edges
(its gold lies in [0, 1]) and at the 20/40/60/80% quantiles of the project's candidates' gold
for the other tasks, whose gold has no fixed range, so ratings use the whole scale.

They are users named `simulated-<project>-<n>`, annotators of the project with no usable
password, so their answers are told apart from people's by name in every export. Tests and
benchmarks use them; they never stand in for human data.
"""

import uuid
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import torch
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from PIL import Image
from rest_framework.test import APIClient

from common.errors import ApplicationError
from projects.models import Candidate, Item, Project, RatingMode, Role, VisionTask
from projects.services import membership_set
from trainer.configs import DEFAULT_FIDELITY_WEIGHT
from trainer.reward_model.simulate import (
    DEFAULT_NOISES,
    RATING_EDGES,
    TIE_EPS,
    caption_gold_scores,
    colorization_gold_scores,
    gold_scores,
    label_gold_agreement,
    panoptic_gold_scores,
    simulate_preferences,
    simulate_rankings,
    simulate_ratings,
)
from trainer.rewards.captioning import CiderD
from training.feedback import (
    boxes_from_outputs,
    class_indices,
    output_rgb,
    panoptic_map,
    panoptic_positions,
    resized_map,
    rgb_tensor,
)

_CHOICE = {1.0: "A", 0.0: "B", 0.5: "tie"}


@dataclass
class SimulationReport:
    answered: int = 0
    skipped: int = 0  # tasks whose item has no ground truth to judge by
    # Share of decided pairs whose label names the gold-better output; None without any.
    agreement: float | None = None


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


def _truth(item: Item, key: str):
    truth = item.ground_truth
    return truth.get(key) if isinstance(truth, dict) else None


def _detection_gold(project: Project, item: Item, candidates: list[Candidate]) -> torch.Tensor:
    size, class_of, n = (item.width, item.height), class_indices(project), len(candidates)
    pred = boxes_from_outputs([c.output for c in candidates], [size] * n, class_of)
    gt = boxes_from_outputs([{"objects": _truth(item, "objects")}] * n, [size] * n, class_of)
    return gold_scores(pred.boxes, pred.classes, pred.valid, gt.boxes, gt.classes, gt.valid)


def _at_size(pixels: np.ndarray, item: Item) -> np.ndarray:
    """An output image at its item's size (they are stored so; a foreign one is resized)."""
    if pixels.shape[:2] == (item.height, item.width):
        return pixels
    return np.asarray(Image.fromarray(pixels).resize((item.width, item.height),
                                                     Image.Resampling.BILINEAR))


def _item_rgb(item: Item) -> np.ndarray:
    with Image.open(item.image.path) as image:
        return np.asarray(image.convert("RGB"))


def _colorization_gold(item: Item, candidates: list[Candidate]) -> torch.Tensor:
    """The truth is the item's colour image in its ground truth (`{"image_url"}`) where the item
    shows the greyscale input, else the item's own (colour) image."""
    colour = _truth(item, "image_url")
    truth = rgb_tensor(_at_size(output_rgb({"image_url": colour}), item) if colour else
                       _item_rgb(item))
    pred = torch.stack([rgb_tensor(_at_size(output_rgb(c.output), item)) for c in candidates])
    return colorization_gold_scores(pred, truth.expand_as(pred),
                                    fidelity_weight=DEFAULT_FIDELITY_WEIGHT)


def _panoptic_gold(project: Project, item: Item, candidates: list[Candidate]) -> torch.Tensor:
    positions = panoptic_positions(project)
    truth = panoptic_map(item.ground_truth, positions)
    height, width = truth.shape[:2]
    maps = []
    for candidate in candidates:
        pred = panoptic_map(candidate.output, positions)
        maps.append(resized_map(pred, height, width))
    preds = torch.from_numpy(np.stack(maps))
    return panoptic_gold_scores(preds, torch.from_numpy(truth).expand_as(preds))


def candidate_gold(project: Project) -> dict[int, float]:
    """Candidate id -> gold score, for the candidates of items with ground truth."""
    by_item: dict[int, list[Candidate]] = defaultdict(list)
    for candidate in Candidate.objects.filter(item__project=project).select_related("item"):
        by_item[candidate.item_id].append(candidate)
    gold: dict[int, float] = {}
    task = project.task
    cider = None
    if task == VisionTask.CAPTIONING:
        references = [refs for refs in (_truth(c[0].item, "captions") for c in by_item.values())
                      if refs]
        cider = CiderD.from_references(references) if references else None
    for candidates in by_item.values():
        item = candidates[0].item
        if task == VisionTask.DETECTION and _truth(item, "objects"):
            scores = _detection_gold(project, item, candidates)
        elif task == VisionTask.CAPTIONING and cider and _truth(item, "captions"):
            captions = [c.output.get("caption", "") for c in candidates]
            scores = caption_gold_scores(captions, [_truth(item, "captions")] * len(captions),
                                         cider)
        elif task == VisionTask.COLORIZATION:
            scores = _colorization_gold(item, candidates)
        elif task == VisionTask.PANOPTIC and _truth(item, "png_url"):
            scores = _panoptic_gold(project, item, candidates)
        else:
            continue
        gold.update({c.pk: float(s) for c, s in zip(candidates, scores.tolist(), strict=True)})
    return gold


def rating_edges(project: Project, gold: dict[int, float]) -> tuple[float, ...]:
    """The gold bins of ratings 1-5 (see the module docstring)."""
    if project.task == VisionTask.DETECTION or not gold:
        return RATING_EDGES
    values = torch.tensor(list(gold.values()), dtype=torch.float64)
    return tuple(torch.quantile(values, torch.tensor([0.2, 0.4, 0.6, 0.8],
                                                     dtype=torch.float64)).tolist())


@dataclass
class _Annotator:
    """What a simulated annotator judges by, and the pairs it has decided."""

    project: Project
    gold: dict[int, float]
    edges: tuple[float, ...]
    noise: float
    generator: torch.Generator
    labels: list[tuple[float, float, float]]  # (label, gold a, gold b)

    def answer(self, task: dict) -> dict | None:
        """The answer to a task screen (None: an output without ground truth to judge by)."""
        shown = task["candidates"]
        if any(c["id"] not in self.gold for c in shown):
            return None
        gold = torch.tensor([self.gold[c["id"]] for c in shown])
        mode, tie_eps = self.project.rating_mode, TIE_EPS[self.project.task]
        if mode == RatingMode.SCALE:
            return {"score": int(simulate_ratings(gold[:1], noise=self.noise, edges=self.edges,
                                                  generator=self.generator))}
        if mode == RatingMode.PAIRWISE:
            label = float(simulate_preferences(gold[:1], gold[1:2], noise=self.noise,
                                               tie_eps=tie_eps, generator=self.generator))
            self.labels.append((label, float(gold[0]), float(gold[1])))
            return {"choice": _CHOICE[label]}
        order = simulate_rankings(gold[None], noise=self.noise, generator=self.generator)[0]
        ranked = gold[order].tolist()
        self.labels += [(1.0, a, b) for i, a in enumerate(ranked) for b in ranked[i + 1:]
                        if abs(a - b) > tie_eps]
        return {"ranking": [shown[int(i)]["id"] for i in order]}

    def agreement(self) -> float | None:
        if not self.labels:
            return None
        label, gold_a, gold_b = torch.tensor(self.labels).T
        value = label_gold_agreement(label, gold_a, gold_b)
        return None if value != value else value  # NaN: no decided pair


def _check(response, expected: tuple[int, ...]) -> dict | None:
    if response.status_code not in expected:
        detail = response.json().get("detail", "") if response.content else ""
        raise ApplicationError(f"{response.request['PATH_INFO']} answered "
                               f"{response.status_code}: {detail}")
    return response.json() if response.content else None


def answer_queue(
    project: Project, user: AbstractBaseUser, *, noise: float | None = None, seed: int = 0,
    limit: int | None = None,
) -> SimulationReport:
    """Answer the user's queue in the project through the REST API until it is empty (or
    `limit` answers); `noise` in the task's gold units (None: the task's default)."""
    noise = DEFAULT_NOISES[project.task] if noise is None else noise
    if noise < 0:
        raise ApplicationError("noise must be 0 (a perfect annotator) or more.", field="noise")
    client = APIClient(HTTP_HOST=_api_host())
    client.force_authenticate(user)
    gold = candidate_gold(project)
    annotator = _Annotator(project, gold, rating_edges(project, gold), noise,
                           torch.Generator().manual_seed(seed), [])
    report = SimulationReport()
    while limit is None or report.answered < limit:
        task = _check(client.get(f"/api/projects/{project.pk}/next-task/"), (200, 204))
        if task is None:
            break
        answer = annotator.answer(task)
        if answer is None:
            _check(client.post(f"/api/tasks/{task['id']}/skip/"), (200, 204))
            report.skipped += 1
            continue
        _check(client.post(f"/api/tasks/{task['id']}/answer/",
                           {"answer": answer, "idempotency_key": str(uuid.uuid4())},
                           format="json"), (201,))
        report.answered += 1
    report.agreement = annotator.agreement()
    return report
