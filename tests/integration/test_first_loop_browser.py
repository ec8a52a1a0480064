"""The loop a newcomer runs, in a real browser from a fresh demo, on a real Celery worker
(PostgreSQL, Redis, Debian's chromium through Playwright against live_server):

the worker trains the demo's starting models; the annotator rates a few tasks of the
colorization A vs B project in the annotator UI (by click and by keyboard), simulated annotators
answer the rest through the API; the admin trains a reward model from the reward-model pages,
launches a tuning run against it from the runs page's form, watches it finish on the live run
page, compares the two versions, and generates the next round from the versions page; the
annotator is then served a task with the tuned model's output (newest tasks first). No page
asks anything of a host other than 127.0.0.1.

With TUNELAB_SCREENSHOTS=docs/screenshots the test also writes the docs' screenshots
(tests/integration/screenshots.py).
"""

import re
from collections.abc import Iterator
from io import StringIO
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command
from django.db.models import F, QuerySet
from django.utils import timezone
from playwright.sync_api import expect

from labeling.models import Assignment, AssignmentStatus, Comparison, Task
from projects.models import Candidate, DemoModelTraining, Project
from rewards.models import RewardModel
from tests.integration.screenshots import screenshot
from tests.integration.workers import wait_for
from training.simulated import answer_queue, simulated_annotators
from tuning.models import TuningRun

pytestmark = [pytest.mark.integration, pytest.mark.browser,
              pytest.mark.django_db(transaction=True)]

PASSWORD = "first-loop-password"
LOOP_PROJECT = "Shapes colorization: A vs B"
# Each starting model's training budget: long enough to save a model, short for the test.
TRAIN_SECONDS = 2
# A reward model and a run of a few steps: the loop, not the learning, is under test.
REWARD_MODEL_CONFIG = '{"steps": 3, "batch_size": 4, "eval_every": 3}'
RUN_SETTINGS = {"steps": "3", "batch_size": "2", "samples": "2", "warmup": "1",
                "threads": "1", "select_images": "4"}
FINISHED = re.compile(r"^(succeeded|failed|cancelled)$")
# Worker jobs queue behind the five starting models' trainings on this one worker.
WORKER_MS = 150_000


class UserBrowser:
    """One user's browser context; every request any of its pages makes is kept."""

    def __init__(self, browser, base: str, requested: list[str], errors: list[str]) -> None:
        self.base = base
        self.context = browser.new_context(viewport={"width": 1000, "height": 760})
        self.context.on("request", lambda request: requested.append(request.url))
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda error: errors.append(str(error)))

    def log_in(self, username: str) -> None:
        self.page.goto(f"{self.base}/login/")
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", PASSWORD)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(f"{self.base}/")


@pytest.fixture
def demo(start_worker, monkeypatch, settings):
    """A fresh demo with tiny training budgets, its worker taking CPU and GPU jobs."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    monkeypatch.setenv("DEMO_PASSWORD", PASSWORD)
    worker = start_worker(queues="default,gpu")
    call_command("demo_setup", train_seconds=TRAIN_SECONDS, stdout=StringIO())
    return worker


@pytest.fixture
def users(browser, live_server) -> Iterator[tuple[UserBrowser, UserBrowser, list[str]]]:
    """The admin's and the annotator's browsers on 127.0.0.1, and every URL they requested."""
    base = f"http://127.0.0.1:{live_server.thread.port}"
    requested: list[str] = []
    errors: list[str] = []
    admin, annotator = (UserBrowser(browser, base, requested, errors) for _ in range(2))
    yield admin, annotator, requested
    for user in (admin, annotator):
        user.context.close()
    assert not errors, f"a page threw: {errors}"


def outside_hosts(urls: list[str]) -> list[str]:
    """The URLs that went over the network to anything but 127.0.0.1."""
    return [url for url in urls if urlsplit(url).scheme not in ("data", "blob")
            and urlsplit(url).hostname != "127.0.0.1"]


def answers_of(username: str) -> QuerySet:
    return Comparison.objects.filter(annotator__username=username)


def test_the_first_loop_from_a_fresh_demo(demo, users):
    admin, annotator, requested = users
    project = Project.objects.get(name=LOOP_PROJECT)

    # The admin's home page shows the starting models as the worker trains them.
    admin.log_in("admin")
    trainings = admin.page.locator("#demo-training li")
    expect(trainings).to_have_count(DemoModelTraining.objects.count())
    expect(trainings.filter(has_text=LOOP_PROJECT)).to_have_attribute(
        "data-status", "succeeded", timeout=WORKER_MS)
    assert Candidate.objects.filter(model_version__name="demo MLE model",
                                    item__project=project).exists()

    # The annotator rates a few tasks in the annotator UI, the first by its button, the others
    # by their keys, and leaves.
    annotator.log_in("annotator")
    annotator.page.click(f"a[href='/projects/{project.pk}/annotate/']")
    stage = annotator.page.locator("#stage")
    expect(stage).to_have_attribute("aria-busy", "false")
    screenshot(annotator.page, f"annotate-{project.task}-{project.rating_mode}")
    for action in ("click", "a", "b", "t"):
        shown = stage.get_attribute("data-task-id")
        if action == "click":
            annotator.page.click("#mode-controls [data-key='a']")
        else:
            annotator.page.keyboard.press(action)
        expect(stage).not_to_have_attribute("data-task-id", shown)
    wait_for(lambda: answers_of("annotator").count() == 4, what="the annotator's answers")

    # Simulated annotators answer the rest through the API: every task is full but the two the
    # annotator was shown last (the one on screen and the one preloaded), which they hold.
    for simulated in simulated_annotators(project, 2):
        answer_queue(project, simulated)
    assert project.tasks.filter(answer_count__lt=F("answers_needed")).count() == 2

    # The admin trains a reward model from the reward-model pages, once every starting model
    # is ready (the worker takes one job at a time: it would wait for them anyway).
    admin.page.reload()
    expect(admin.page.locator("#demo-training li[data-status='succeeded']")).to_have_count(
        DemoModelTraining.objects.count(), timeout=WORKER_MS)
    screenshot(admin.page, "home", full_page=True)
    admin.page.click(f"a[href='/rewards/projects/{project.pk}/']")
    admin.page.fill("#launch-config", REWARD_MODEL_CONFIG)
    screenshot(admin.page, "reward-models", full_page=True)
    admin.page.click("#launch-form button[type=submit]")
    expect(admin.page.locator("#rm-status")).to_have_attribute(
        "data-status", FINISHED, timeout=WORKER_MS)
    assert admin.page.text_content("#rm-status") == "succeeded", \
        admin.page.text_content("#rm-error")
    reward_model = RewardModel.objects.get(project=project)
    expect(admin.page.locator("#rm-snapshot")).to_contain_text(
        f"{Comparison.objects.filter(task__project=project).count()} comparisons")
    screenshot(admin.page, "reward-model", full_page=True)

    # ... launches a tuning run against it from the runs page's form, and watches it finish.
    admin.page.click(f"nav a[href='/projects/{project.pk}/runs/']")
    admin.page.select_option("#run-start_version", label="demo MLE model")
    admin.page.select_option("#run-reward", "learned")
    admin.page.select_option("#run-reward_model", str(reward_model.pk))
    for name, value in RUN_SETTINGS.items():
        admin.page.fill(f"#config-{name}", value)
    screenshot(admin.page, "runs", full_page=True)
    admin.page.click("#launch-form button[type=submit]")
    admin.page.wait_for_url(f"{admin.base}/tuning/runs/*/")
    status = admin.page.locator("#run-status")
    expect(status).to_have_text(FINISHED, timeout=WORKER_MS)
    assert status.text_content() == "succeeded", admin.page.text_content("#run-error")
    run = TuningRun.objects.get(project=project)
    assert (run.reward, run.reward_model_id) == ("learned", reward_model.pk)
    expect(admin.page.locator("#run-steps")).to_have_text("3 / 3")
    expect(admin.page.locator("#run-result")).to_contain_text(run.result_version.name)
    expect(admin.page.locator("#samples figure").first).to_be_visible()
    screenshot(admin.page, "run", full_page=True)

    # ... compares the versions, and generates the next round from the tuned one.
    admin.page.click("a.brand")
    admin.page.click(f"a[href='/projects/{project.pk}/versions/']")
    tuned = admin.page.locator(f"#versions tr[data-version='{run.result_version_id}']")
    screenshot(admin.page, "versions", full_page=True)
    tuned.get_by_role("link", name="compare with parent").click()
    expect(admin.page.locator("h1")).to_have_text(
        f"demo MLE model → {run.result_version.name}")
    expect(admin.page.locator("#compare-metrics tbody tr").first).to_be_visible()
    expect(admin.page.locator("#samples figure").first).to_be_visible()
    screenshot(admin.page, "compare", full_page=True)
    admin.page.go_back()
    admin.page.select_option("#round-version", str(run.result_version_id))
    admin.page.click("#next-round button[type=submit]")
    expect(admin.page.locator("#round-queued")).to_contain_text(
        f"a worker runs {run.result_version.name} on {project.items.count()} items")
    new_tasks = Task.objects.filter(project=project,
                                    candidates__model_version=run.result_version)
    wait_for(lambda: new_tasks.exists(), what="tasks of the tuned model's outputs",
             worker=demo, timeout=WORKER_MS / 1000)

    # The annotator comes back once their leases have run out (LABELING_LEASE_SECONDS): the
    # two old tasks are open to them again, and the newest task comes first, with an output of
    # the tuned model.
    Assignment.objects.filter(annotator__username="annotator", status=AssignmentStatus.LEASED,
                              task__project=project).update(lease_expires_at=timezone.now())
    annotator.page.goto(f"{annotator.base}/projects/{project.pk}/annotate/")
    expect(stage).to_have_attribute("aria-busy", "false")
    assert new_tasks.filter(pk=int(stage.get_attribute("data-task-id"))).exists()

    # The rest of the admin's pages, and the annotator's screen of every other demo project.
    for path, name in ((f"/projects/{project.pk}/quality/", "quality"),
                       (f"/projects/{project.pk}/export/", "export")):
        admin.page.goto(f"{admin.base}{path}")
        expect(admin.page.locator("h1")).to_be_visible()
        screenshot(admin.page, name, full_page=True)
    for other in Project.objects.exclude(pk=project.pk):
        annotator.page.goto(f"{annotator.base}/projects/{other.pk}/annotate/")
        expect(stage).to_have_attribute("aria-busy", "false")
        expect(stage.locator(".panel").first).to_be_visible()
        screenshot(annotator.page, f"annotate-{other.task}-{other.rating_mode}")

    assert requested
    assert not outside_hosts(requested), f"asked outside 127.0.0.1: {outside_hosts(requested)}"
