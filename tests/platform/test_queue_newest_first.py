"""The next round comes first: once a model version's outputs join a project, annotators get
their tasks before what is left of the earlier rounds (the project's `serve_newest_first`, on
by default), through next-task and through the answer's next task (on PostgreSQL one stored
function); with the setting off, the oldest tasks come first."""

import uuid

import pytest

from labeling.models import Task
from labeling.services.leases import next_task_for
from labeling.services.task_creation import tasks_create
from projects.models import Project, RatingMode
from projects.services import candidate_create, model_version_get_or_create


def next_round(project: Project) -> set[int]:
    """A new version's outputs on every item, and their tasks: the new tasks' ids."""
    before = set(project.tasks.values_list("id", flat=True))
    version = model_version_get_or_create(project=project, name="tuned")
    for item in project.items.all():
        candidate_create(item=item, model_version=version, output={"objects": []})
    tasks_create(project=project)
    return set(project.tasks.values_list("id", flat=True)) - before


@pytest.fixture
def rounds(make_project, annotator) -> tuple[Project, set[int]]:
    project = make_project(rating_mode=RatingMode.SCALE, n_items=3, n_candidates=1,
                           annotators=[annotator])
    return project, next_round(project)


def served(api, project: Project, answers: int) -> list[int]:
    """The tasks the annotator is served, answering each: next-task, then each answer's next."""
    task = api.get(f"/api/projects/{project.pk}/next-task/").json()
    order = [task["id"]]
    for _ in range(answers):
        reply = api.post(f"/api/tasks/{task['id']}/answer/",
                         {"answer": {"score": 3}, "idempotency_key": str(uuid.uuid4())},
                         format="json")
        assert reply.status_code == 201, reply.content
        task = reply.json()["next_task"]
        if task is None:
            break
        order.append(task["id"])
    return order


def test_a_new_project_serves_newest_first(rounds):
    project, _ = rounds
    assert project.serve_newest_first is True


def test_the_next_rounds_tasks_come_before_the_earlier_ones(rounds, annotator, annotator_api):
    project, new = rounds
    assert next_task_for(user=annotator, project=project).task_id in new
    order = served(annotator_api, project, answers=5)
    assert len(order) == 6
    assert set(order[:3]) == new, "the new round first, by next-task and by each answer's next"
    assert order == sorted(order, reverse=True)


def test_with_the_setting_off_the_oldest_come_first(rounds, annotator_api):
    project, new = rounds
    Project.objects.filter(pk=project.pk).update(serve_newest_first=False)
    order = served(annotator_api, project, answers=5)
    assert set(order[3:]) == new and order == sorted(order)
    assert Task.objects.filter(project=project).count() == 6
