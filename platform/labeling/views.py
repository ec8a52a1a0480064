"""The annotation queue's hot endpoints, next task and answer, as plain Django views.

They keep the contracts of DRF views (docs/api.md; common.plain_api for authentication, CSRF
and errors) and check their input as the serializers do (labeling.answer_input, and
labeling.api's for `?after=`) whenever a request is not the plain case, so every error is the
one DRF gives. What they do is in labeling.services; on PostgreSQL a plain answer is one
database call (answers.answer_at_once), anything else the usual path.
"""

from django.http import HttpRequest, HttpResponse, QueryDict

from common.integers import query_int
from common.permissions import ANNOTATORS
from common.plain_api import (
    authenticated_user_id,
    iso_datetime,
    json_body,
    json_response,
    plain_api,
)
from labeling import api
from labeling.answer_input import answer_body_parse
from labeling.selectors import Lease, TaskScreen, answer_target, lease_screen, project_mode
from labeling.services.answers import StoredAnswer, answer_and_lease_next, answer_at_once
from labeling.services.leases import lease_next


def _after(query: QueryDict) -> int | None:
    """`?after=`: a task id, checked as NextTaskInput does."""
    return query_int(query, "after", min_value=1)


def screen_json(screen: TaskScreen) -> dict:
    """A task as api.TaskOutput renders it."""
    return {
        "id": screen.id,
        "lease_expires_at": iso_datetime(screen.lease_expires_at),
        "rating_mode": screen.rating_mode,
        "item": {"id": screen.item.id, "image_url": screen.item.image_url,
                 "width": screen.item.width, "height": screen.item.height},
        "candidates": [{"id": c.id, "label": c.label, "output": c.output}
                       for c in screen.candidates],
        "progress": {"done_today": screen.progress.done_today, "done": screen.progress.done,
                     "total": screen.progress.total},
    }


def answer_json(stored: StoredAnswer) -> dict:
    """An answer as api.AnswerOutput renders it."""
    return {"id": stored.id, "task": stored.task_id, "answer": stored.answer,
            "idempotency_key": stored.idempotency_key, "time_spent_ms": stored.time_spent_ms,
            "created_at": iso_datetime(stored.created_at)}


def _screen(lease: Lease | None, *, user_id: int, project_id: int, mode: str) -> dict | None:
    if lease is None:
        return None
    return screen_json(lease_screen(lease=lease, user_id=user_id, project_id=project_id,
                                    rating_mode=mode))


@plain_api(methods=("GET",), documented_by=api.NextTaskApi)
def next_task(request: HttpRequest, project_id: int) -> HttpResponse:
    user_id = authenticated_user_id(request)
    after = _after(request.GET)
    mode = project_mode(user_id=user_id, project_id=project_id, roles=ANNOTATORS)
    lease = lease_next(user_id=user_id, project_id=project_id, after=after)
    if lease is None:
        return HttpResponse(status=204)
    return json_response(_screen(lease, user_id=user_id, project_id=project_id, mode=mode))


@plain_api(methods=("POST",), documented_by=api.AnswerApi)
def answer(request: HttpRequest, task_id: int) -> HttpResponse:
    user_id = authenticated_user_id(request)
    body = answer_body_parse(json_body(request))
    after = _after(request.GET)
    answered = {"answer": body.answer, "idempotency_key": body.idempotency_key,
                "time_spent_ms": body.time_spent_ms, "after": after}
    at_once = answer_at_once(user_id=user_id, task_id=task_id, roles=ANNOTATORS, **answered)
    if at_once is not None:
        stored, screen = at_once
        data = answer_json(stored)
        data["next_task"] = None if screen is None else screen_json(screen)
        return json_response(data, status=201)
    target = answer_target(user_id=user_id, task_id=task_id, roles=ANNOTATORS)
    stored, created, lease = answer_and_lease_next(user_id=user_id, target=target, **answered)
    data = answer_json(stored)
    data["next_task"] = _screen(lease, user_id=user_id, project_id=target.project_id,
                                mode=target.rating_mode)
    return json_response(data, status=201 if created else 200)
