"""The console pages in a real browser: the launch form shows a refusal's messages under the
settings at fault, then launches and opens the live run page, which draws the first logged step
as a point with its value; the compare page draws the run's samples of both versions."""

import io

import pytest
from django.contrib.auth import get_user_model
from PIL import Image
from playwright.sync_api import expect

from config.celery import app as celery_app
from projects.models import ModelVersion, Project, Role
from projects.services import (
    item_create,
    membership_set,
    model_version_get_or_create,
    project_create,
)
from tests.browser.conftest import PASSWORD
from tuning.models import TuningRun, TuningStep

pytestmark = pytest.mark.browser

CATEGORIES = [{"id": 1, "name": "circle"}, {"id": 2, "name": "square"}]


def ready_version(project: Project, name: str, **columns) -> ModelVersion:
    """A version whose checkpoint a worker has read (its description columns written)."""
    version = model_version_get_or_create(project=project, name=name)
    ModelVersion.objects.filter(pk=version.pk).update(
        checkpoint=f"projects/{project.pk}/checkpoints/{name}.pt", task="detection",
        class_names=["circle", "square"], checkpoint_format="tunelab-checkpoint/1", **columns)
    return ModelVersion.objects.get(pk=version.pk)


@pytest.fixture
def admin_project(transactional_db, monkeypatch) -> tuple[Project, object]:
    monkeypatch.setattr(celery_app, "send_task", lambda name, args: None)
    admin = get_user_model().objects.create_user("console-admin", password=PASSWORD)
    project = project_create(name="console shapes", task="detection", rating_mode="pairwise",
                             categories=CATEGORIES)
    membership_set(project=project, user=admin, role=Role.ADMIN)
    return project, admin


def test_the_launch_form_shows_field_errors_then_opens_the_live_run(
    live_server, page, admin_project, log_in
):
    project, admin = admin_project
    ready_version(project, "mle")
    log_in(page, live_server, admin)
    page.goto(f"{live_server.url}/projects/{project.pk}/runs/")

    page.fill("#config-lr", "5")
    page.fill("#config-steps", "0")
    page.click("#launch-form button[type=submit]")
    lr_box = page.locator('[data-error-for="config.lr"]')
    expect(lr_box).to_be_visible()
    expect(lr_box).to_contain_text("lr must be > 0 and < 1, got 5")
    expect(page.locator("#config-lr")).to_have_attribute("aria-invalid", "true")
    expect(page.locator('[data-error-for="config.steps"]')).to_contain_text("steps must be >= 1")
    expect(page.locator('[data-error-for="config.batch_size"]')).to_be_hidden()
    assert not TuningRun.objects.exists()

    page.fill("#config-lr", "0.0001")
    page.fill("#config-steps", "4")
    page.click("#launch-form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/tuning/runs/*/")
    run = TuningRun.objects.get()
    # Only what differs from the trainer's defaults: the steps, and log_every, which the form
    # starts at 1.
    assert run.config == {"steps": 4, "log_every": 1}

    # The worker logs its first step: the page draws it as a point with its value.
    TuningStep.objects.create(run=run, step=0, metrics={"reward": 0.25, "loss": 1.5})
    TuningRun.objects.filter(pk=run.pk).update(status="running", step=1, worker="gpu-1:7")
    curve = page.locator('.curve[data-metric="reward"]')
    expect(curve.locator(".point")).to_be_visible()
    expect(curve.locator(".value")).to_have_text("0.25")
    box = curve.locator(".point").bounding_box()
    assert box["width"] > 4 and box["height"] > 4
    expect(page.locator("#run-steps")).to_have_text("1 / 4")


def test_the_compare_page_draws_both_versions_outputs_side_by_side(
    live_server, page, admin_project, log_in
):
    project, admin = admin_project
    png = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 90, 90)).save(png, format="PNG")
    item = item_create(project=project, file_name="scene.png", image=png.getvalue())
    mle = ready_version(project, "mle", metrics={"map": 0.4})
    tuned = ready_version(project, "mle tuned", parent=mle, metrics={"map": 0.5})
    TuningRun.objects.create(
        project=project, start_version=mle, result_version=tuned, status="succeeded",
        config={"steps": 4}, total_steps=4, step=4,
        samples=[{"image_url": item.image.url, "width": 64, "height": 48,
                  "before": {"objects": [{"bbox": [2, 2, 10, 10], "category_id": 1}]},
                  "after": {"objects": [{"bbox": [4, 4, 20, 12], "category_id": 2},
                                        {"bbox": [30, 20, 8, 8], "category_id": 1}]}}])
    log_in(page, live_server, admin)
    page.goto(f"{live_server.url}/projects/{project.pk}/versions/")
    page.click("text=compare with parent")
    page.wait_for_url(f"{live_server.url}/projects/{project.pk}/versions/compare/*")
    expect(page.locator("h1")).to_have_text("mle → mle tuned")
    expect(page.locator('[data-metric="map"] td').nth(3)).to_have_text("+0.1000")
    figures = page.locator(".sample figure")
    expect(figures).to_have_count(2)
    expect(figures.nth(0).locator("figcaption")).to_have_text("mle")
    expect(figures.nth(1).locator("figcaption")).to_have_text("mle tuned")
    expect(figures.nth(0).locator("rect.box")).to_have_count(1)
    expect(figures.nth(1).locator("rect.box")).to_have_count(2)
    expect(page.locator("#samples-empty")).to_be_hidden()
