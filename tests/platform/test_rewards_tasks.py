"""Reward models of captioning, colorization and panoptic projects: the answers become the
trainer's feedback datasets of the task (the outputs the annotators saw, the image as the
task's policy sees it), a caption outside the vocabulary refuses the training by name, and a
tiny reward model trains in-process on each task with its held-out figures."""

import pytest
import torch

from common.jobs import JobStatus
from labeling.models import Comparison
from projects.models import Candidate, RatingMode
from rewards.services import reward_model_launch
from tests.integration.feedback_support import (
    BARE_CAPTION,
    SCENES,
    add_scene_items,
    answer_by_quality,
    task_project,
)
from trainer.data.shapes import generate_scene, scene_seed
from trainer.reward_model.model import load_reward_model
from trainer.reward_model.outputs import CaptionOutputs, ColorOutputs, PanopticOutputs
from trainer.tasks.captioning import tokenize
from training.feedback import caption_codec, project_feedback
from training.reward_model import train_project_reward_model

pytestmark = pytest.mark.django_db

TINY_RM = {"image_size": 32, "width": 8, "stages": 2, "steps": 3, "batch_size": 4,
           "eval_every": 3, "threads": 1}
SHAPES_TASKS = ("captioning", "colorization", "panoptic")


def answered(task: str, annotator, **options):
    project = task_project(task, annotators=[annotator], **options)
    quality = add_scene_items(project, n_items=4)
    answer_by_quality(project, annotator, quality)
    return project, quality


def test_caption_answers_become_caption_tokens(annotator):
    project, _ = answered("captioning", annotator)
    prefs = project_feedback(project, image_size=32).preferences
    assert len(prefs) == 12 and prefs.images.shape == (4, 3, 32, 32)
    assert isinstance(prefs.a, CaptionOutputs)
    a_won = (prefs.label == 1)[:, None]
    winners = torch.where(a_won, prefs.a.tokens, prefs.b.tokens)
    losers = torch.where(a_won, prefs.b.tokens, prefs.a.tokens)
    codec = caption_codec(None)
    # The bare caption never wins; each item's reference caption never loses.
    assert BARE_CAPTION not in codec.decode(winners)
    references = {" ".join(tokenize(generate_scene(scene_seed("train", i), SCENES).captions[0])
                           .split()) for i in range(4)}
    assert not references & set(codec.decode(losers))
    assert references <= set(codec.decode(winners))


def test_a_caption_outside_the_vocabulary_refuses_the_training_by_name(annotator):
    project, _ = answered("captioning", annotator)
    odd = Candidate.objects.filter(item__project=project).order_by("id").first()
    odd.output = {"caption": "a red zeppelin"}
    odd.save(update_fields=["output"])
    with pytest.raises(ValueError, match=rf"candidate {odd.pk} .*'zeppelin'"):
        project_feedback(project, image_size=32)
    reward_model = reward_model_launch(project=project, config=TINY_RM)
    train_project_reward_model(reward_model.pk, worker="w1")
    reward_model.refresh_from_db()
    assert reward_model.status == JobStatus.FAILED
    assert f"candidate {odd.pk}" in reward_model.error and "zeppelin" in reward_model.error


def test_colorization_answers_become_colour_images_over_the_greyscale_input(annotator):
    project, _ = answered("colorization", annotator, rating_mode=RatingMode.SCALE)
    ratings = project_feedback(project, image_size=16).ratings
    # The colorizer's input: one channel, 2 * gray - 1.
    assert ratings.images.shape == (4, 1, 16, 16)
    assert ratings.images.min() >= -1 and ratings.images.max() <= 1
    assert isinstance(ratings.outputs, ColorOutputs)
    assert ratings.outputs.pixels.shape == (12, 3, 16, 16)
    # Colour left in an output (its spread across channels) follows the rating.
    rgb = ratings.outputs.rgb()
    colour = (rgb - rgb.mean(1, keepdim=True)).abs().mean((1, 2, 3))
    best, worst = ratings.rating == 5, ratings.rating == 1
    assert colour[best].min() > colour[worst].max()
    gray = (ratings.images[ratings.image_index[worst]] + 1) / 2
    assert torch.allclose(rgb[worst], gray.expand(-1, 3, -1, -1), atol=0.03)


def test_panoptic_answers_become_maps_of_category_positions(annotator):
    project, _ = answered("panoptic", annotator, rating_mode=RatingMode.RANKING)
    rankings = project_feedback(project, image_size=32).rankings
    assert (len(rankings), rankings.k) == (4, 3)
    assert isinstance(rankings.ranked, PanopticOutputs)
    maps = rankings.ranked.maps.view(4, 3, 32, 32, 2).long()
    ranked = Comparison.objects.filter(task__project=project).order_by("id")
    for image, comparison in enumerate(ranked):
        shown = Candidate.objects.get(pk=comparison.ranking[0]).item.file_name
        scene = generate_scene(scene_seed("train", int(shown[6:-4])), SCENES)
        truth = torch.as_tensor(scene.classes + 1)[torch.as_tensor(scene.panoptic).long() - 1]
        truth = torch.where(torch.as_tensor(scene.panoptic) > 0, truth, 0)
        best, second, last = maps[image]
        assert torch.equal(best[..., 0], truth)  # ranked first: the true map
        assert (second[..., 0] != truth).any() and (last == 0).all()
        # Each object is an instance of its own; the background has instance 0.
        assert best[..., 1].unique().numel() == len(scene.classes) + 1


@pytest.mark.parametrize("task", SHAPES_TASKS)
def test_a_reward_model_trains_on_each_task(task, annotator):
    project, _ = answered(task, annotator)
    reward_model = reward_model_launch(project=project, config=TINY_RM)
    assert reward_model.config["readout"] != "boxes"
    train_project_reward_model(reward_model.pk, worker="w1")
    reward_model.refresh_from_db()
    assert reward_model.status == JobStatus.SUCCEEDED, reward_model.error
    assert 0.0 <= reward_model.heldout_accuracy <= 1.0
    assert reward_model.metrics["heldout_pairs_pairs"] > 0
    model, metrics = load_reward_model(reward_model.file.path)
    assert model.config.task == task and metrics["pair_acc"] == reward_model.heldout_accuracy
