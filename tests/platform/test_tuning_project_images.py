"""Tuning on the project's own images (`"data": {"source": "project"}`), which usually have no
ground truth: a learned reward tunes on them and the run reports the reward model's score
before and after (COCO mAP only on images with ground truth); the metric reward, which needs
ground truth, is refused at launch where an image lacks it. The export fixes which images are
held out of training for the run's selection: items with ground truth where there are any
(selected against it), else any items (selected by the learned reward)."""

import json
import math
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework import status

from common.errors import ApplicationError
from common.jobs import JobStatus
from projects.services import item_create
from tests.integration.tuning_support import (
    TRUE_BOX,
    add_graded_items,
    shapes_project,
    tiny_tune_config,
    trained_reward_model,
    version_with_checkpoint,
)
from trainer.train.checkpoint import load_checkpoint
from training.project_images import project_images_folder
from training.tuning_run import execute_run
from tuning.models import TuningRun, TuningStep
from tuning.services import RUN_TASK, tuning_run_launch

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sent")]

PROJECT_IMAGES = {"source": "project"}


@pytest.fixture
def shapes(project_admin):
    return shapes_project(admins=[project_admin])


@pytest.fixture
def rated(shapes, annotator):
    """The project's 6 items (no ground truth) rated by an annotator, and a reward model
    trained on those ratings."""
    return trained_reward_model(shapes, annotator)


def add_annotated_items(project, png_bytes, objects: list[dict], n: int = 2) -> list[int]:
    return [item_create(project=project, file_name=f"annotated_{i}.png",
                        image=png_bytes(32, 24, (40 * i, 120, 60)),
                        ground_truth={"objects": objects}).pk for i in range(n)]


def run_on_project_images(project, **launch) -> TuningRun:
    run = tuning_run_launch(project=project, start_version=version_with_checkpoint(project),
                            config=tiny_tune_config(), data=PROJECT_IMAGES, **launch)
    execute_run(run.pk, worker="w1")
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.error
    return run


def heldout(run: TuningRun) -> dict:
    folder = Path(settings.MEDIA_ROOT) / f"tuning/runs/{run.pk}/images"
    return json.loads((folder / "heldout.json").read_text())


def exported(run: TuningRun) -> tuple[dict, list[int]]:
    folder = Path(settings.MEDIA_ROOT) / f"tuning/runs/{run.pk}/images"
    return (json.loads((folder / "instances.json").read_text()),
            json.loads((folder / "annotated.json").read_text()))


def test_a_learned_reward_tunes_on_the_project_s_images_without_ground_truth(shapes, rated):
    run = run_on_project_images(shapes, reward="learned", reward_model=rated)
    version = run.result_version
    assert version.parent == run.start_version
    assert load_checkpoint(version.checkpoint.path).step == 4
    # No ground truth: no COCO figures; the reward model's score of both models' outputs.
    assert not {"map", "eval", "best_decoding"} & set(version.metrics)
    learned = version.metrics["learned_reward"]
    assert set(learned) == {"before", "after"} and all(map(math.isfinite, learned.values()))
    # The run trained on the project's 6 images, exported once, without annotations.
    instances, annotated = exported(run)
    item_ids = sorted(shapes.items.values_list("pk", flat=True))
    assert sorted(image["id"] for image in instances["images"]) == item_ids
    assert (instances["annotations"], annotated) == ([], [])
    assert len(run.samples) == 4 and {(s["width"], s["height"]) for s in run.samples} == {(32, 24)}
    steps = [step.metrics for step in TuningStep.objects.filter(run=run)]
    assert len(steps) == 4 and all(math.isfinite(m["reward"]) for m in steps)
    # Nothing to hit or to measure the metric against: neither is logged as if it were 0.
    assert not any({"metric_reward", "hit_rate"} & set(m) for m in steps)


def test_map_is_computed_on_the_images_that_have_ground_truth(shapes, rated, png_bytes):
    empty_box = {"bbox": [5, 5, 0, 4], "category_id": 1}  # imports accept it; no IoU with it
    annotated_ids = add_annotated_items(shapes, png_bytes, [TRUE_BOX, empty_box])
    run = run_on_project_images(shapes, reward="learned", reward_model=rated)
    instances, annotated = exported(run)
    assert len(instances["images"]) == 8 and sorted(annotated) == annotated_ids
    assert [(a["image_id"], a["bbox"]) for a in instances["annotations"]] == [
        (pk, TRUE_BOX["bbox"]) for pk in annotated_ids]
    metrics = run.result_version.metrics
    assert {"map", "eval", "learned_reward"} <= set(metrics)
    # Logged beside the learned reward on the batches that held an annotated image.
    assert any("metric_reward" in step.metrics for step in TuningStep.objects.filter(run=run))


def test_the_metric_reward_tunes_on_project_images_that_all_have_ground_truth(
    shapes, png_bytes
):
    add_annotated_items(shapes, png_bytes, [TRUE_BOX], n=3)
    run = run_on_project_images(shapes)
    metrics = run.result_version.metrics
    assert "map" in metrics and "learned_reward" not in metrics


def test_the_metric_reward_is_refused_where_an_image_has_no_ground_truth(shapes, sent):
    add_graded_items(shapes, n_items=3)
    with pytest.raises(ApplicationError) as refused:
        tuning_run_launch(project=shapes, start_version=version_with_checkpoint(shapes),
                          config=tiny_tune_config(), data=PROJECT_IMAGES)
    assert "data.source" in refused.value.errors
    assert "3 of the project's 3 images" in refused.value.message
    assert not TuningRun.objects.exists() and sent == []


@pytest.fixture
def launch_body(shapes):
    return {"start_version": version_with_checkpoint(shapes).pk, "config": tiny_tune_config()}


def post_run(client, project, body: dict, capture):
    with capture(execute=True):
        return client.post(f"/api/projects/{project.pk}/tuning-runs/", body, format="json")


def test_a_launch_on_the_project_s_images_is_queued(
    admin_api, shapes, rated, launch_body, sent, django_capture_on_commit_callbacks
):
    response = post_run(admin_api, shapes, {**launch_body, "data": PROJECT_IMAGES,
                                            "reward": "learned", "reward_model": rated.pk},
                        django_capture_on_commit_callbacks)
    assert response.status_code == status.HTTP_201_CREATED, response.json()
    assert response.json()["data"] == PROJECT_IMAGES
    assert sent == [(RUN_TASK, [response.json()["id"]])]


@pytest.mark.parametrize(("data", "graded", "field"), [
    (PROJECT_IMAGES, True, "data.source"),  # metric reward, images without ground truth
    (PROJECT_IMAGES, False, "data.source"),  # no images at all
    ({"source": "coco"}, True, "data.source"),
    ({"source": "project", "data_dir": "elsewhere"}, True, "data.data_dir"),
])
def test_an_impossible_project_images_run_is_refused_with_its_field_and_nothing_queued(
    admin_api, shapes, launch_body, sent, django_capture_on_commit_callbacks, data, graded,
    field,
):
    if graded:
        add_graded_items(shapes, n_items=2)
    response = post_run(admin_api, shapes, {**launch_body, "data": data},
                        django_capture_on_commit_callbacks)
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert field in response.json()["errors"], response.json()
    assert not TuningRun.objects.exists() and sent == []


def test_the_run_selects_on_held_out_items_with_ground_truth_fixed_at_the_first_export(
    shapes, rated, png_bytes
):
    annotated_ids = add_annotated_items(shapes, png_bytes, [TRUE_BOX], n=3)
    run = run_on_project_images(shapes, reward="learned", reward_model=rated)
    fixed = heldout(run)
    assert fixed["ground_truth"] and len(fixed["image_ids"]) == 1
    assert set(fixed["image_ids"]) <= set(annotated_ids)
    selection = run.result_version.metrics["selection"]
    assert (selection["metric"], selection["source"], selection["images"]) == \
        ("map", "ground_truth", 1)
    # A resumed run finds the export: items imported since change nothing it holds out.
    item_create(project=shapes, file_name="later.png", image=png_bytes(32, 24, (9, 9, 9)),
                ground_truth={"objects": [TRUE_BOX]})
    project_images_folder(run)
    assert heldout(run) == fixed


def test_without_ground_truth_the_run_selects_by_the_learned_reward(shapes, rated):
    run = run_on_project_images(shapes, reward="learned", reward_model=rated)
    fixed = heldout(run)
    assert not fixed["ground_truth"] and len(fixed["image_ids"]) == 1
    selection = run.result_version.metrics["selection"]
    assert (selection["metric"], selection["source"], selection["images"]) == \
        ("learned_reward", "learned_reward", 1)
    assert [step for step, _ in selection["history"]] == [0, 4]
