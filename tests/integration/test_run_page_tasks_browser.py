"""The run page in a real browser (Debian's chromium through Playwright, against live_server)
for captioning, colorization and panoptic runs: a run executed in-process on a tiny model ends
with samples that the page draws with the annotator UI's renderer of the task, the input shown
first where that renderer shows the output apart from it, every image loaded."""

from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model

from config.celery import app as celery_app
from projects.models import RatingMode, Role
from projects.services import membership_set, project_create
from tests.integration.task_support import (
    SHAPES_PANOPTIC,
    SHAPES_TASKS,
    tiny_task_checkpoint_bytes,
)
from tests.integration.tuning_support import (
    TINY_DATA,
    run_page,
    tiny_tune_config,
    version_with_checkpoint,
)
from training.tuning_run import execute_run
from tuning.models import TuningRun
from tuning.services import tuning_run_launch

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "every-task-tunes"
# Every <img> on the page has loaded (the media view served it to the admin).
IMAGES_LOADED = ("[...document.querySelectorAll('#samples img')].every("
                 "(img) => img.complete && img.naturalWidth > 0)")


@pytest.fixture(params=SHAPES_TASKS)
def run(request, monkeypatch) -> TuningRun:
    monkeypatch.setattr(celery_app, "send_task", lambda name, args: None)
    admin = get_user_model().objects.create_user(username="run-admin", password=PASSWORD)
    project = project_create(name=f"shapes {request.param}", task=request.param,
                             rating_mode=RatingMode.PAIRWISE,
                             categories=SHAPES_PANOPTIC if request.param == "panoptic" else [])
    membership_set(project=project, user=admin, role=Role.ADMIN)
    version = version_with_checkpoint(project,
                                      content=tiny_task_checkpoint_bytes(request.param))
    run = tuning_run_launch(project=project, start_version=version, config=tiny_tune_config(),
                            data=TINY_DATA)
    execute_run(run.pk, worker="w1")
    run.refresh_from_db()
    assert run.samples, run.error
    return run


@pytest.fixture
def page(browser, live_server, run) -> Iterator[object]:
    with run_page(browser, live_server, run.pk, username="run-admin", password=PASSWORD) as opened:
        yield opened


def test_the_samples_are_drawn_as_the_annotator_ui_draws_the_task(page, run):
    task = run.project.task
    page.wait_for_selector(f".sample >> nth={len(run.samples) - 1}")
    page.wait_for_function(IMAGES_LOADED)
    rows = page.locator(".sample")
    assert rows.count() == len(run.samples)
    first, sample = rows.nth(0).locator("figure"), run.samples[0]
    if task == "captioning":
        assert first.count() == 3 and first.nth(0).locator("img").count() == 1
        captions = [first.nth(i).locator("p.caption").text_content() for i in (1, 2)]
        assert captions == [sample["before"]["caption"], sample["after"]["caption"]]
    elif task == "colorization":
        assert first.count() == 3
        assert first.nth(0).locator("img").get_attribute("src") == sample["image_url"]
        assert [first.nth(i).locator("img").get_attribute("src") for i in (1, 2)] == [
            sample["before"]["image_url"], sample["after"]["image_url"]]
    else:
        assert first.count() == 2
        # The segment map is repainted on a canvas the size of the image once it has loaded.
        page.wait_for_function(
            "[...document.querySelectorAll('#samples canvas.overlay')].every("
            f"(canvas) => canvas.width === {sample['width']})")
        assert page.locator("#samples .note").count() == 0
        assert "segment" in first.nth(0).locator("figcaption").text_content()
