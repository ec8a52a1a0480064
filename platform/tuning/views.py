"""The run page (project admins only). It only renders: the JavaScript polls the REST API for
step metrics and status, draws the curves, and cancels or retries the run."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from common.errors import ApplicationError
from tuning.configs import on_project_images
from tuning.hacking import run_reward_hacking
from tuning.selection import run_selection
from tuning.selectors import run_for


# The page's JavaScript sends the csrftoken cookie back as X-CSRFToken (cancel, retry).
@ensure_csrf_cookie
@login_required
def run_page(request: HttpRequest, run_id: int) -> HttpResponse:
    try:
        run = run_for(request.user, run_id)
    except ApplicationError as exc:  # a member who is not an admin of the project
        raise PermissionDenied(exc.message) from exc
    hacking = run_reward_hacking(run)
    page_data = {"id": run.pk, "categories": run.project.categories, "hacking": hacking}
    return render(request, "tuning/run.html", {
        "run": run, "page_data": page_data,
        "on_project_images": on_project_images(run.data_config),
        "selection": run_selection(run), "hacking": hacking,
    })
