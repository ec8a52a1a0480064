"""Outputs of varied quality to compare, and simulated feedback on them, for every task.

A *candidate source* is `(batch, n, generator) -> outputs`: n outputs for each image of a task's
batch (`tasks.py`'s collate), image-major (rows i * n ... i * n + n - 1 belong to image i), as
the task's container (`outputs.py`). Two kinds exist:
- "perturb": ground truth spoilt at a random strength per candidate (`perturb.py`), for when no
  policy exists yet or to cover the quality range evenly;
- `policy_source`: samples of a policy, decoded by its codec (what the tuned policy will
  actually show the reward model).

`make_preference_data`, `make_ranking_data` and `make_rating_data` draw images (Synthetic
Shapes by default), candidates and simulated feedback (`simulate.py`) with its hidden gold
(`tasks.py`: each task's own reward against the scene's ground truth).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from trainer.data.detection import ShapesStream
from trainer.data.shapes import DEFAULT_CONFIG, Scene, ShapesConfig, generate_scene, scene_seed
from trainer.reward_model.data import PreferenceDataset, RankingDataset, RatingDataset
from trainer.reward_model.outputs import Outputs
from trainer.reward_model.perturb import (  # noqa: F401  (the detection candidates' home before)
    STRENGTH_LEVELS,
    Perturbation,
    perturb_boxes,
    perturbation_source,
)
from trainer.reward_model.simulate import (
    RATING_EDGES,
    simulate_preferences,
    simulate_rankings,
    simulate_ratings,
)
from trainer.reward_model.tasks import default_task, judging

CandidateSource = Callable[[Any, int, torch.Generator], Outputs]

# Reward-model data comes from its own stretch of the endless train split, far beyond where
# training runs read (`TrainStream` starts seed s at s * 10**8).
RM_SCENE_OFFSET = 9 * 10**8


def scene_stream(config: ShapesConfig = DEFAULT_CONFIG, split: str = "train", start: int = 0
                 ) -> Iterator[Scene]:
    """Synthetic Shapes scenes scene_seed(split, i) for i = start, start + 1, ..."""
    index = start
    while True:
        yield generate_scene(scene_seed(split, index), config)
        index += 1


def rm_examples(task: str, seed: int, config: ShapesConfig = DEFAULT_CONFIG) -> Iterator[Any]:
    """The reward model's own stretch of the train split for `seed`: DetectionExamples for
    detection, scenes for the other tasks (their batches come from the scenes)."""
    start = RM_SCENE_OFFSET + seed * 10**6
    if task == "detection":
        return ShapesStream(config, "train", start)
    return scene_stream(config, "train", start)


def policy_source(model, codec, *, temperature: float = 1.0,
                  task: str = "detection") -> CandidateSource:
    """Candidates: `model.sample` outputs decoded by the task's codec, on the CPU."""
    outputs = judging(task).outputs

    def source(batch: Any, n: int, generator: torch.Generator) -> Outputs:
        batch = batch.to(model.device)
        tokens, _ = model.sample(batch.images, n, temperature=temperature, generator=generator)
        return outputs(codec, tokens, batch, n).to("cpu")

    return source


@dataclass(frozen=True)
class _Candidates:
    """Images, their ground truth and n candidates per image with gold scores."""

    images: Tensor  # (I, C, S, S)
    outputs: Outputs  # I * n, image-major
    gold: Tensor  # (I, n)


def _candidates(
    num_images: int,
    per_image: int,
    seed: int,
    source: CandidateSource | str,
    examples: Iterator[Any] | None,
    image_size: int,
    task: str,
    task_object: Any | None,
    chunk: int = 64,
) -> _Candidates:
    if num_images < 1:
        raise ValueError(f"need at least one image, got {num_images}")
    judge = judging(task)
    task_object = task_object if task_object is not None else default_task(task)
    if source == "perturb":
        def source(batch: Any, n: int, generator: torch.Generator) -> Outputs:
            return judge.perturb(task_object, batch, n, generator)
    elif isinstance(source, str):
        raise ValueError(f"unknown candidate source {source!r} (use 'perturb' or a function)")
    if examples is None:
        examples = rm_examples(task, seed)
    generator = torch.Generator().manual_seed(seed)
    images, outputs, gold = [], [], []
    for start in range(0, num_images, chunk):
        batch = judge.collate(task_object, [next(examples) for _ in
                                            range(min(chunk, num_images - start))], image_size)
        candidates = source(batch, per_image, generator)
        gold.append(judge.gold(task_object, candidates, batch, per_image).cpu()
                    .view(len(batch), per_image))
        images.append(batch.images.cpu())
        outputs.append(candidates)
    return _Candidates(torch.cat(images), type(outputs[0]).cat(outputs), torch.cat(gold))


def make_preference_data(
    n_pairs: int,
    noise: float,
    seed: int,
    candidate_source: CandidateSource | str = "perturb",
    *,
    pairs_per_image: int = 2,
    tie_eps: float | None = None,
    examples: Iterator[Any] | None = None,
    image_size: int = 64,
    task: str = "detection",
    task_object: Any | None = None,
) -> PreferenceDataset:
    """`n_pairs` simulated preferences, `pairs_per_image` per image (2 candidates a pair).

    Images come from `examples` (default: Synthetic Shapes scenes of the train split, a stretch
    of its own for each seed; DetectionExamples for detection, scenes otherwise), resized to
    `image_size`; candidates from `candidate_source` ("perturb" or a CandidateSource), scored by
    `task`'s gold with the settings of `task_object` (default: the task's default config).
    `tie_eps` None: the task's (`simulate.TIE_EPS`).
    """
    images = -(-n_pairs // pairs_per_image)
    drawn = _candidates(images, 2 * pairs_per_image, seed, candidate_source, examples,
                        image_size, task, task_object)
    rows = torch.arange(n_pairs)
    image_index = rows // pairs_per_image
    first = image_index * 2 * pairs_per_image + 2 * (rows % pairs_per_image)
    gold = drawn.gold.flatten()
    gold_a, gold_b = gold[first], gold[first + 1]
    generator = torch.Generator().manual_seed(seed + 1)
    return PreferenceDataset(
        images=drawn.images,
        image_index=image_index,
        a=drawn.outputs.select(first),
        b=drawn.outputs.select(first + 1),
        label=simulate_preferences(gold_a, gold_b, noise=noise,
                                   tie_eps=judging(task).tie_eps if tie_eps is None else tie_eps,
                                   generator=generator),
        gold_a=gold_a,
        gold_b=gold_b,
    )


def make_ranking_data(
    n_rankings: int,
    k: int,
    noise: float,
    seed: int,
    candidate_source: CandidateSource | str = "perturb",
    *,
    examples: Iterator[Any] | None = None,
    image_size: int = 64,
    task: str = "detection",
    task_object: Any | None = None,
) -> RankingDataset:
    """`n_rankings` simulated rankings of `k` candidates, one ranking per image (the rest as
    `make_preference_data`)."""
    drawn = _candidates(n_rankings, k, seed, candidate_source, examples, image_size, task,
                        task_object)
    order = simulate_rankings(drawn.gold, noise=noise,
                              generator=torch.Generator().manual_seed(seed + 1))
    rows = (torch.arange(n_rankings)[:, None] * k + order).flatten()
    return RankingDataset(
        images=drawn.images,
        image_index=torch.arange(n_rankings),
        ranked=drawn.outputs.select(rows),
        k=k,
        gold=drawn.gold.gather(1, order),
    )


def make_rating_data(
    n_images: int,
    per_image: int,
    noise: float,
    seed: int,
    candidate_source: CandidateSource | str = "perturb",
    *,
    examples: Iterator[Any] | None = None,
    image_size: int = 64,
    task: str = "detection",
    task_object: Any | None = None,
) -> RatingDataset:
    """Simulated 1-5 ratings of `per_image` candidates on each of `n_images` images (the rest
    as `make_preference_data`). Detection's gold lies in [0, 1] and is binned at
    `RATING_EDGES`; the other tasks' gold has no fixed range, so their annotators bin it at
    the 20/40/60/80% quantiles of the candidates' gold: they use the whole scale."""
    drawn = _candidates(n_images, per_image, seed, candidate_source, examples, image_size, task,
                        task_object)
    gold = drawn.gold.flatten()
    edges = RATING_EDGES if task == "detection" else tuple(
        torch.quantile(gold.float(), torch.tensor([0.2, 0.4, 0.6, 0.8])).tolist())
    return RatingDataset(
        images=drawn.images,
        image_index=torch.arange(n_images).repeat_interleave(per_image),
        outputs=drawn.outputs,
        rating=simulate_ratings(gold, noise=noise, edges=edges,
                                generator=torch.Generator().manual_seed(seed + 1)),
        gold=gold,
    )
