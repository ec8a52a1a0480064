"""The console pages of one project: tuning runs (with the launch form), model versions (with
the next round's button), two versions compared, annotator quality, export links.

Admins see and do everything; viewers read the runs and the versions; annotators get 403 and
users outside the project 404 (`common.permissions`). The pages only render: their JavaScript
launches runs and generates candidates through the REST API.
"""

from collections.abc import Sequence

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from common.errors import ApplicationError
from common.permissions import ADMINS, READERS, project_for
from console import selectors
from projects.models import Project
from tuning.candidates import MAX_SAMPLES


def _project(request: HttpRequest, project_id: int, roles: Sequence[str]) -> Project:
    try:
        return project_for(request.user, project_id, roles=tuple(roles))
    except ApplicationError as exc:  # a member without one of the roles
        raise PermissionDenied(exc.message) from exc


# The launch form's JavaScript sends the csrftoken cookie back as X-CSRFToken.
@ensure_csrf_cookie
@login_required
def runs_page(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(request, project_id, READERS)
    return render(request, "console/runs.html", {
        "project": project, "is_admin": project.role in ADMINS,
        "runs": selectors.run_rows(project), "versions": selectors.ready_versions(project),
        "reward_models": selectors.trained_reward_models(project),
        "settings": selectors.tune_settings(),
        "page_data": {"project": project.pk, "defaults": selectors.tune_defaults()},
    })


@ensure_csrf_cookie
@login_required
def versions_page(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(request, project_id, READERS)
    rows = selectors.version_rows(project)
    return render(request, "console/versions.html", {
        "project": project, "is_admin": project.role in ADMINS, "rows": rows,
        "ready": selectors.ready_versions(project), "max_samples": MAX_SAMPLES,
    })


@login_required
def compare_page(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(request, project_id, READERS)
    compared = selectors.versions_compared(project, request.GET.get("before"),
                                           request.GET.get("after"))
    run = compared.run
    return render(request, "console/compare.html", {
        "project": project, "compared": compared, "is_admin": project.role in ADMINS,
        "page_data": {
            "categories": project.categories,
            "samples": run.samples if run else [],
            "start": run.start_version.name if run else "",
            "result": run.result_version.name if run else "",
        },
    })


@login_required
def quality_page(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(request, project_id, ADMINS)
    return render(request, "console/quality.html", {
        "project": project, "figures": selectors.quality_charts(project),
    })


@login_required
def export_page(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(request, project_id, ADMINS)
    return render(request, "console/export.html", {
        "project": project, "link": selectors.export_link(project, request.GET),
        "choices": selectors.export_choices(project), "formats": selectors.EXPORT_FORMATS,
        "asked": bool(request.GET),
    })
