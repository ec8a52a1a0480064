"""The run page in a real browser (Debian's chromium through Playwright, against
live_server): curves grow as the worker logs steps, samples of both models and what the
held-out selection kept appear when the run ends, and the cancel and retry buttons work."""

import io
from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from PIL import Image

from common.jobs import JobStatus
from config.celery import app as celery_app
from tests.integration.tuning_support import (
    run_page,
    shapes_project,
    tiny_tune_config,
    version_with_checkpoint,
)
from tuning.models import TuningRun, TuningStep
from tuning.services import tuning_run_launch

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "tuning-runs-are-fun"


@pytest.fixture
def run(monkeypatch) -> TuningRun:
    monkeypatch.setattr(celery_app, "send_task", lambda name, args: None)
    admin = get_user_model().objects.create_user(username="run-admin", password=PASSWORD)
    shapes = shapes_project(admins=[admin])
    return tuning_run_launch(project=shapes, start_version=version_with_checkpoint(shapes),
                             config=tiny_tune_config(steps=10))


@pytest.fixture
def page(browser, live_server, run) -> Iterator[object]:
    with run_page(browser, live_server, run.pk, username="run-admin", password=PASSWORD) as opened:
        yield opened


def log_steps(run: TuningRun, steps: range) -> None:
    for step in steps:
        TuningStep.objects.create(run=run, step=step,
                                  metrics={"reward": 0.1 * step, "grad_norm": 1.0 / (1 + step)})
    TuningRun.objects.filter(pk=run.pk).update(status=JobStatus.RUNNING, step=steps.stop,
                                               worker="gpu-1:42", heartbeat_at=timezone.now())


def points(page, metric: str) -> int:
    return len(page.get_attribute(f'.curve[data-metric="{metric}"] polyline', "points").split())


def wait_for_points(page, metric: str, n: int) -> None:
    """The page polls every 2 s and may catch a batch of steps half written: wait for all."""
    page.wait_for_function(
        f"document.querySelector('.curve[data-metric=\"{metric}\"] polyline')"
        f"?.getAttribute('points').split(' ').length === {n}")


def wait_for_status(page, status: str) -> None:
    page.wait_for_function(
        f"document.getElementById('run-status').textContent === {status!r}")


def test_curves_grow_live_and_samples_show_at_the_end(page, run):
    log_steps(run, range(0, 4))
    wait_for_points(page, "reward", 4)
    assert points(page, "grad_norm") == 4
    log_steps(run, range(4, 7))
    wait_for_points(page, "reward", 7)
    assert page.text_content("#run-steps") == "7 / 10"

    buffer = io.BytesIO()
    Image.new("RGB", (48, 32), (30, 90, 160)).save(buffer, format="PNG")
    name = default_storage.save("tuning/sample.png", ContentFile(buffer.getvalue()))
    box = {"objects": [{"bbox": [4, 4, 20, 12], "category_id": 1, "score": 0.9}]}
    kept_start = {"metric": "map", "name": "mAP", "source": "ground_truth", "images": 4,
                  "start_step": 0, "start_metric": 12.5, "best_step": 0, "best_metric": 12.5,
                  "improved": False, "history": [[0, 12.5], [10, 11.0]]}
    version = run.project.model_versions.create(
        name="mle tuned", metrics={"map": 12.5, "selection": kept_start})
    log_steps(run, range(7, 10))
    TuningRun.objects.filter(pk=run.pk).update(
        status=JobStatus.SUCCEEDED, result_version=version, samples=[{
            "image_url": default_storage.url(name), "width": 48, "height": 32,
            "before": {"objects": []}, "after": box}])
    page.wait_for_selector(".sample figure >> nth=1")
    # The samples come with the run's details, the status with the metrics poll: a details
    # request still in flight from the previous status change can show the samples one poll
    # before the status, so the status is waited for, not read at once.
    wait_for_status(page, "succeeded")
    assert page.locator(".sample figure").nth(1).locator("rect.box").count() == 1
    assert page.locator(".sample figure").nth(0).locator("rect.box").count() == 0
    assert "mle tuned: mAP 12.5" in page.text_content("#run-result")
    assert page.text_content("#run-selection").startswith(
        "The tuned version is the starting model: no step beat it on the held-out images")
    assert "run-kept-start" in page.get_attribute("#run-selection", "class")
    assert page.is_hidden("#cancel-run")


def test_cancel_then_retry(page, run):
    log_steps(run, range(0, 2))
    page.click("#cancel-run")
    page.wait_for_selector("#retry-run:not([hidden])")
    assert page.text_content("#run-status") == "cancelled"
    assert TuningRun.objects.get(pk=run.pk).status == JobStatus.CANCELLED
    page.click("#retry-run")
    wait_for_status(page, "queued")
    assert TuningRun.objects.get(pk=run.pk).status == JobStatus.QUEUED
    assert page.is_visible("#cancel-run")
