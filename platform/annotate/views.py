"""The annotator UI's pages. They only render: the project picker lists the user's projects
(with their progress in each they annotate), the annotate page hands the project's settings to
the JavaScript, which talks to the REST API."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from annotate.selectors import picker_projects
from common.errors import ApplicationError
from common.permissions import ANNOTATORS, project_for


@login_required
def project_picker(request: HttpRequest) -> HttpResponse:
    # Each project's buttons are the pages the user's role opens (console's project_pages).
    return render(request, "annotate/project_picker.html",
                  {"entries": picker_projects(request.user)})


# The page's JavaScript sends the csrftoken cookie back as X-CSRFToken, so the cookie must be set
# even though the page itself holds no form that would set it.
@ensure_csrf_cookie
@login_required
def annotate_page(request: HttpRequest, project_id: int) -> HttpResponse:
    try:
        project = project_for(request.user, project_id, roles=ANNOTATORS)
    except ApplicationError as exc:  # a viewer: a member who may not answer
        raise PermissionDenied(exc.message) from exc
    settings_for_js = {
        "id": project.id,
        "name": project.name,
        "task": project.task,
        "rating_mode": project.rating_mode,
        "ranking_k": project.ranking_k,
        "categories": project.categories,
    }
    return render(
        request, "annotate/annotate.html", {"project": project, "project_js": settings_for_js}
    )
