"""The demo's starting models: the worker's training (run in-process, its budget a steps cap)
saves a described model version and adds its samples as candidates; demo_setup queues a
training only while the project's model is missing; the admin's home page shows each
training's state."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from common.jobs import JobStatus
from projects.checkpoints import check_task_checkpoint
from projects.demo_training import DEMO_MODEL_NAME, demo_training_request
from projects.models import DemoModelTraining, ModelVersion, Project
from trainer.data.shapes import CLASS_NAMES
from training.demo_training import SAMPLES, train_demo_model

STEPS = 3


@pytest.fixture
def demo(db, monkeypatch) -> None:
    """The demo's projects, no training queued."""
    monkeypatch.setenv("DEMO_CHECKPOINT", "/nonexistent/ckpt.pt")
    call_command("demo_setup", train_seconds=0, stdout=StringIO())


def trained(project: Project) -> DemoModelTraining:
    """The project's demo training, run on this process to a budget of STEPS steps."""
    training, _ = demo_training_request(project=project, max_seconds=0, max_steps=STEPS)
    train_demo_model(training.pk, worker="test-worker")
    training.refresh_from_db()
    return training


def test_the_background_training_gives_the_project_a_tunable_model_and_new_candidates(
        demo, sent, django_capture_on_commit_callbacks):
    project = Project.objects.get(name="Shapes detection: 1-5")
    tasks_before = project.tasks.count()
    training = trained(project)
    assert training.status == JobStatus.SUCCEEDED, training.error
    assert training.steps_done == STEPS
    version = training.model_version
    assert version.name == DEMO_MODEL_NAME and version.checkpoint_state == "ready"
    assert version.task == "detection" and version.class_names == list(CLASS_NAMES)
    assert version.parameters > 0 and version.metrics["steps"] == STEPS
    # A tuning run and "generate candidates" may start from it now.
    check_task_checkpoint(project, version, "start_version")
    items = project.items.count()
    assert version.candidates.count() == items * SAMPLES == training.candidates_created
    assert project.tasks.count() > tasks_before

    # The task delivered twice does nothing more.
    train_demo_model(training.pk, worker="another-worker")
    assert version.candidates.count() == items * SAMPLES

    # Asked again (demo_setup runs at every `make run`): the model is there, nothing is sent.
    with django_capture_on_commit_callbacks(execute=True):
        assert demo_training_request(project=project, max_seconds=60, max_steps=10) == \
            (training, False)
    assert sent == []

    # Failed after its model was saved (here: by hand): asked again, it samples the saved
    # model without training another.
    version.candidates.all().delete()
    DemoModelTraining.objects.filter(pk=training.pk).update(status=JobStatus.FAILED,
                                                            error="the worker ran out of disk")
    again, sent_again = demo_training_request(project=project, max_seconds=60, max_steps=10)
    assert sent_again and again.status == JobStatus.QUEUED and again.error == ""
    assert (again.model_version, again.steps_done, again.max_steps) == (version, STEPS, STEPS)
    train_demo_model(training.pk, worker="test-worker")
    training.refresh_from_db()
    assert training.status == JobStatus.SUCCEEDED and training.steps_done == STEPS
    assert ModelVersion.objects.filter(project=project, name=DEMO_MODEL_NAME).count() == 1
    assert version.candidates.count() == items * SAMPLES


@pytest.mark.parametrize("task", ["captioning", "colorization", "panoptic"])
def test_the_background_training_saves_a_described_model_of_every_task(make_project, sent,
                                                                        task):
    # Whether its samples become candidates is training.candidates' part (asserted above for
    # detection); the model itself must be there, described, for any task.
    training = trained(make_project(task=task))
    assert training.steps_done == STEPS
    version = training.model_version
    assert version is not None, training.error
    assert version.checkpoint_state == "ready" and version.task == task


# --- the admin's home page ---

def home_page(user) -> str:
    client = Client()
    client.force_login(user)
    response = client.get("/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_home_page_shows_each_demo_training_to_the_project_admin(
        make_project, project_admin, annotator, sent):
    project = make_project(admins=[project_admin], annotators=[annotator], name="Shapes demo")
    training, _ = demo_training_request(project=project, max_seconds=120, max_steps=100_000)
    page = home_page(project_admin)
    assert 'id="demo-training"' in page and 'data-active="true"' in page
    assert "Shapes demo" in page and "waiting for the worker (budget 120 s)" in page
    assert 'id="demo-training"' not in home_page(annotator)  # admins only

    DemoModelTraining.objects.filter(pk=training.pk).update(
        status=JobStatus.RUNNING, seconds_used=37.2, steps_done=412)
    assert "training: 37 s of 120 s used, step 412" in home_page(project_admin)

    version = ModelVersion.objects.create(project=project, name=DEMO_MODEL_NAME)
    DemoModelTraining.objects.filter(pk=training.pk).update(
        status=JobStatus.SUCCEEDED, seconds_used=120.4, steps_done=1300, model_version=version,
        candidates_created=6)
    page = home_page(project_admin)
    assert f"ready: <em>{DEMO_MODEL_NAME}</em>, trained in 120 s (1300 steps)" in page
    assert "6 of its samples added to rate" in page
    assert "data-active" not in page  # nothing left to poll for

    DemoModelTraining.objects.filter(pk=training.pk).update(
        status=JobStatus.FAILED, error="ValueError: no scenes\n\nTraceback ...")
    assert "failed after training <em>demo MLE model</em>: ValueError: no scenes" in \
        home_page(project_admin)
