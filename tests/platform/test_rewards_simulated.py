"""Simulated annotators answer a project's queue through the API by the hidden gold score:
without noise they always prefer, rank and rate by the metric against ground truth, on every
task; with the task's default noise they mostly prefer the gold-better output and say how
often; items without ground truth are skipped; bad requests get a clear message."""

import pytest
from django.core.management import CommandError, call_command

from labeling.models import Comparison, Rating, Task
from projects.models import RatingMode
from tests.integration.feedback_support import add_scene_items, task_project
from tests.integration.tuning_support import add_graded_items, shapes_project

pytestmark = pytest.mark.django_db


def simulate(project, **options) -> None:
    call_command("simulate_annotators", project.pk, **options)


def test_without_noise_preferences_follow_the_metric():
    project = shapes_project()
    quality = add_graded_items(project, n_items=3, ground_truth=True)
    simulate(project, annotators=2, noise=0.0)
    comparisons = Comparison.objects.filter(task__project=project).select_related("task")
    assert comparisons.count() == Task.objects.filter(project=project).count() == 9
    assert {c.annotator.username for c in comparisons} <= {
        f"simulated-{project.pk}-0", f"simulated-{project.pk}-1"}
    for comparison in comparisons:
        a, b = comparison.task.slots.order_by("position").values_list("candidate_id", flat=True)
        assert comparison.choice == ("A" if quality[a] < quality[b] else "B")


def test_without_noise_rankings_and_ratings_follow_the_metric():
    ranked = shapes_project(name="ranked", rating_mode=RatingMode.RANKING)
    quality = add_graded_items(ranked, n_items=2, ground_truth=True)
    simulate(ranked, noise=0.0)
    for comparison in Comparison.objects.filter(task__project=ranked):
        assert [quality[pk] for pk in comparison.ranking] == [0, 1, 2]
    rated = shapes_project(name="rated", rating_mode=RatingMode.SCALE)
    quality = add_graded_items(rated, n_items=2, ground_truth=True)
    simulate(rated, noise=0.0)
    scores = {quality[r.candidate_id]: r.score for r in Rating.objects.filter(
        task__project=rated)}
    assert scores[0] == 5 and scores[0] > scores[1] >= scores[2]


def test_noise_makes_mistakes_and_items_without_truth_are_skipped(capsys):
    project = shapes_project()
    quality = add_graded_items(project, n_items=8, n_candidates=2, ground_truth=True)
    simulate(project, noise=5.0, seed=3)
    wrong = 0
    for comparison in Comparison.objects.filter(task__project=project):
        a, b = comparison.task.slots.order_by("position").values_list("candidate_id", flat=True)
        wrong += comparison.choice != ("A" if quality[a] < quality[b] else "B")
    assert 0 < wrong < 8
    bare = shapes_project(name="no truth")
    add_graded_items(bare, n_items=2)
    simulate(bare)
    assert "0 answered, 6 skipped" in capsys.readouterr().out
    assert not Comparison.objects.filter(task__project=bare).exists()


def test_bad_requests_are_refused():
    with pytest.raises(CommandError, match="No project with id 999999"):
        call_command("simulate_annotators", 999999)
    with pytest.raises(CommandError, match="noise"):
        simulate(shapes_project(), noise=-1.0)


@pytest.mark.parametrize("task", ["captioning", "colorization", "panoptic"])
def test_without_noise_every_task_follows_its_metric(task):
    project = task_project(task)
    quality = add_scene_items(project, n_items=2)
    simulate(project, noise=0.0)
    comparisons = Comparison.objects.filter(task__project=project)
    assert comparisons.count() == 6
    for comparison in comparisons:
        a, b = comparison.task.slots.order_by("position").values_list("candidate_id", flat=True)
        assert comparison.choice == ("A" if quality[a] < quality[b] else "B"), comparison.task


def test_a_colorization_queue_is_answered_mostly_for_the_gold_better_output(capsys):
    project = task_project("colorization")
    quality = add_scene_items(project, n_items=8)
    simulate(project, annotators=2)  # the task's default noise
    comparisons = Comparison.objects.filter(task__project=project)
    assert comparisons.count() == Task.objects.filter(project=project).count() == 24
    right = 0
    for comparison in comparisons:
        a, b = comparison.task.slots.order_by("position").values_list("candidate_id", flat=True)
        right += comparison.choice == ("A" if quality[a] < quality[b] else "B")
    assert right >= 0.75 * 24
    out = capsys.readouterr().out
    assert "labels named the gold-better output on" in out and "of decided pairs" in out


def test_ratings_of_a_colorization_project_use_the_whole_scale():
    rated = task_project("colorization", rating_mode=RatingMode.SCALE)
    quality = add_scene_items(rated, n_items=5)
    simulate(rated, noise=0.0)
    scores = {r.candidate_id: r.score for r in Rating.objects.filter(task__project=rated)}
    # Gold is binned at its quintiles over the project's candidates, not detection's [0, 1].
    assert min(scores.values()) == 1 and max(scores.values()) == 5
    assert all(scores[c] < scores[d] for c in scores for d in scores
               if quality[c] == 2 and quality[d] == 0)


def test_a_greyscale_colorization_item_is_judged_against_its_colour_ground_truth():
    """Where the item shows the greyscale input (the demo's), the truth is the colour image in
    its ground truth: the true colours beat a grey output, which the greyscale image itself
    would have preferred (a PSNR of 100 dB against it)."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from projects.services import candidate_create, item_create, model_version_get_or_create
    from tests.integration.feedback_support import SCENES, _png
    from trainer.data.shapes import generate_scene, scene_seed
    from training.simulated import candidate_gold

    project = task_project("colorization")
    scene = generate_scene(scene_seed("train", 0), SCENES)
    grey = default_storage.save("projects/x/outputs/g/grey.png", ContentFile(_png(
        scene.gray[..., None].repeat(3, axis=2))))
    colour = default_storage.save("projects/x/ground_truth/colour.png",
                                  ContentFile(_png(scene.image)))
    item = item_create(project=project, file_name="scene.png", image=_png(scene.gray),
                       ground_truth={"image_url": default_storage.url(colour)})
    truth_like, grey_like = (
        candidate_create(item=item, model_version=model_version_get_or_create(
            project=project, name=name), output={"image_url": default_storage.url(path)})
        for name, path in (("true colours", colour), ("grey", grey)))
    gold = candidate_gold(project)
    assert gold[truth_like.pk] > gold[grey_like.pk]
