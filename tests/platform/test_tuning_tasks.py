"""The loop on every task: a captioning, colorization or panoptic project tunes a model of its
task against the task's metric on Synthetic Shapes (in-process, tiny models), records the
task's held-out metric and before/after samples in the API's candidate format, and generates
the next round's candidates in that format, with their images served to the project's members
from a folder that does not name the model. Checkpoints and data a task cannot use are refused
with the field."""

import io
import math
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from PIL import Image
from rest_framework import status

from common.jobs import JobStatus
from projects.models import Candidate
from tests.integration.task_support import (
    SHAPES_TASKS,
    tiny_task_checkpoint_bytes,
    with_shapes_categories,
)
from tests.integration.tuning_support import (
    TINY_DATA,
    shapes_project,
    tiny_tune_config,
    version_with_checkpoint,
)
from training.candidates import generate_candidates
from training.tuning_run import execute_run
from tuning.services import tuning_run_launch

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sent")]

HELDOUT = {"captioning": "cider_d", "colorization": "colorization_reward", "panoptic": "pq"}


@pytest.fixture(params=SHAPES_TASKS)
def task(request) -> str:
    return request.param


@pytest.fixture
def tasked(task, make_project, project_admin, annotator):
    """A project of `task` (items of 32 x 24 pixels) with a version holding a tiny model."""
    project = with_shapes_categories(make_project(task=task, admins=[project_admin],
                                                  annotators=[annotator]))
    version = version_with_checkpoint(project, content=tiny_task_checkpoint_bytes(task))
    assert (version.task, version.checkpoint_error) == (task, "")
    return project, version


def media_file(url: str) -> Path:
    return Path(settings.MEDIA_ROOT) / url.split("/media/", 1)[1]


def png_size(url: str) -> tuple[int, int]:
    with Image.open(media_file(url)) as image:
        return image.size


def panoptic_ids(url: str) -> set[int]:
    with Image.open(media_file(url)) as image:
        rgb = np.asarray(image.convert("RGB"), dtype=np.int64)
    return set((rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]).ravel().tolist())


def assert_output(task: str, output: dict, size: tuple[int, int], categories: list[dict]) -> None:
    """`output` is a candidate output of `task` (docs/api.md) for an image of `size` pixels,
    whose files exist, as the annotator UI draws them."""
    if task == "captioning":
        assert set(output) == {"caption"} and isinstance(output["caption"], str)
        return
    if task == "colorization":
        assert set(output) == {"image_url"} and png_size(output["image_url"]) == size
        return
    assert {"png_url", "overlay_url", "segments"} <= set(output)
    assert png_size(output["png_url"]) == png_size(output["overlay_url"]) == size
    with Image.open(media_file(output["overlay_url"])) as overlay:  # drawn as it is
        assert overlay.mode == "RGBA" and overlay.getextrema()[3][0] < 255
    with Image.open(media_file(output["png_url"])) as ids:  # repainted from its ids
        assert ids.mode == "RGB"
    listed = {segment["id"] for segment in output["segments"]}
    assert panoptic_ids(output["png_url"]) - {0} == listed
    assert {s["category_id"] for s in output["segments"]} <= {c["id"] for c in categories}


def test_a_run_tunes_the_task_against_its_metric(tasked, task):
    project, version = tasked
    run = tuning_run_launch(project=project, start_version=version, config=tiny_tune_config(),
                            data=TINY_DATA)
    execute_run(run.pk, worker="w1")
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.error
    tuned = run.result_version
    assert (tuned.task, tuned.parent) == (task, version)
    heldout = tuned.metrics["heldout"]
    assert heldout["name"] == HELDOUT[task] and math.isfinite(heldout["value"])
    assert "map" not in tuned.metrics and tuned.metrics["eval"]
    assert len(run.samples) == 4
    for sample in run.samples:
        size = (sample["width"], sample["height"])
        assert png_size(sample["image_url"]) == size
        for side in ("before", "after"):
            assert_output(task, sample[side], size, project.categories)
    if task == "colorization":  # the model's input is shown: the greyscale image
        with Image.open(media_file(run.samples[0]["image_url"])) as image:
            assert image.mode == "L"


def test_a_detection_run_keeps_map_and_names_it_as_the_heldout_metric(project_admin):
    project = shapes_project(admins=[project_admin])
    run = tuning_run_launch(project=project, start_version=version_with_checkpoint(project),
                            config=tiny_tune_config(), data=TINY_DATA)
    execute_run(run.pk, worker="w1")
    run.refresh_from_db()
    metrics = run.result_version.metrics
    assert metrics["heldout"] == {"name": "map", "value": metrics["map"]}


def test_the_next_rounds_candidates_are_the_tasks_outputs(tasked, task, client, annotator,
                                                          outsider):
    project, version = tasked
    assert generate_candidates(version.pk, samples=2, temperature=1.0) == 4
    made = Candidate.objects.filter(model_version=version).select_related("item")
    assert sorted(made.values_list("sample_index", flat=True)) == [0, 0, 1, 1]
    for candidate in made:
        assert_output(task, candidate.output, (candidate.item.width, candidate.item.height),
                      project.categories)
    assert generate_candidates(version.pk, samples=2, temperature=1.0) == 0  # redelivered
    urls = [url for candidate in made for key, url in candidate.output.items()
            if key.endswith("_url")]
    if task == "captioning":
        return
    # Annotators see them, outsiders do not; the folder tells no model from another.
    client.force_login(annotator)
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200 and response["Content-Type"] == "image/png"
        assert b"".join(response.streaming_content) == media_file(url).read_bytes()
        assert f"/outputs/{version.pk}/" not in url and version.name not in url
    client.force_login(outsider)
    assert client.get(urls[0]).status_code == 404
    second = version_with_checkpoint(project, name="second",
                                     content=tiny_task_checkpoint_bytes(task))
    generate_candidates(second.pk, samples=1, temperature=0.0)
    folders = [url.rsplit("/", 2)[1] for url in urls]
    other = [url.rsplit("/", 2)[1] for candidate in Candidate.objects.filter(model_version=second)
             for key, url in candidate.output.items() if key.endswith("_url")]
    # Every file in a folder of its own: no folder groups one model's outputs.
    assert len(set(folders + other)) == len(folders) + len(other)


def test_greedy_candidates_are_the_same_each_time(tasked, task):
    project, version = tasked
    generate_candidates(version.pk, samples=1, temperature=0.0)
    second = version_with_checkpoint(project, name="again",
                                     content=tiny_task_checkpoint_bytes(task))
    generate_candidates(second.pk, samples=1, temperature=0.0)

    def outputs(model_version):
        rows = Candidate.objects.filter(model_version=model_version).order_by("item_id")
        return [_content(row.output) for row in rows]

    assert outputs(version) == outputs(second)


def _content(output: dict) -> dict:
    """An output with its files' pixels in place of their URLs."""
    return {key: (np.asarray(Image.open(io.BytesIO(media_file(value).read_bytes()))).tobytes()
                  if key.endswith("_url") else value) for key, value in output.items()}


def test_the_generation_of_a_task_model_is_accepted(tasked, admin_api, sent,
                                                    django_capture_on_commit_callbacks):
    project, version = tasked
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_api.post(f"/api/model-versions/{version.pk}/generate-candidates/",
                                  {}, format="json")
    assert response.status_code == status.HTTP_202_ACCEPTED, response.json()
    assert response.json()["items"] == project.items.count()


def launch(client, project, version, **body):
    return client.post(f"/api/projects/{project.pk}/tuning-runs/",
                       {"start_version": version.pk, "config": tiny_tune_config(), **body},
                       format="json")


def test_a_checkpoint_of_another_task_is_refused_naming_the_version(make_project,
                                                                   project_admin, admin_api):
    captioning = make_project(task="captioning", admins=[project_admin])
    detector = version_with_checkpoint(captioning, name="a detector")
    response = launch(admin_api, captioning, detector)
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    message = response.json()["errors"]["start_version"][0]
    assert "a detector" in message and "detection" in message
    refused = admin_api.post(f"/api/model-versions/{detector.pk}/generate-candidates/", {},
                             format="json")
    assert refused.status_code == status.HTTP_400_BAD_REQUEST
    assert "a detector" in refused.json()["errors"]["model_version"][0]


def test_a_panoptic_model_needs_the_projects_categories_to_name_its_classes(
        make_project, project_admin, admin_api):
    project = make_project(task="panoptic", admins=[project_admin])  # circle and square only
    version = version_with_checkpoint(project, content=tiny_task_checkpoint_bytes("panoptic"))
    response = launch(admin_api, project, version)
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert "triangle" in response.json()["errors"]["start_version"][0]


@pytest.mark.parametrize(("body", "field"), [
    ({"data": {"source": "project"}}, "data.source"),
    # A learned reward is any task's; it needs the project's trained reward model.
    ({"reward": "learned"}, "reward_model"),
])
def test_what_only_detection_tunes_on_is_refused_for_the_other_tasks(
        tasked, admin_api, sent, body, field):
    project, version = tasked
    response = launch(admin_api, project, version, **body)
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert field in response.json()["errors"] and sent == []
