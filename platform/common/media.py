"""Files under MEDIA_ROOT, served only to those who may see them.

Every file the platform writes lies under a folder that names its project: a project's own
folder (`projects/<id>/...`: item images, imported outputs and ground truth, checkpoints, reward
models) or a tuning run's (`tuning/runs/<id>/...`: its checkpoint, the COCO export of the
project's images with their ground truth, before/after sample images). `media_rule` maps a
name to its project and the roles that may read it; a name it does not know is not served.

The view keeps the URLs FileFields and `default_storage.url()` already give (`MEDIA_URL` +
name). In development it streams the file; behind nginx (`TUNELAB_MEDIA_ACCEL`) it answers with
`X-Accel-Redirect` to nginx's `internal` location, which sends the file itself.
"""

import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import SuspiciousFileOperation
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.utils._os import safe_join
from django.views.decorators.http import require_safe
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from common.permissions import ADMINS, ANY_MEMBER, READERS
from projects.models import Membership
from tuning.models import TuningRun

# Where nginx's `internal` location for media is mounted (docker-compose.yml).
ACCEL_PREFIX = "/protected-media/"


@dataclass(frozen=True)
class MediaRule:
    """Who may read a media file: members of `project_id` with one of `roles`."""

    project_id: int
    roles: tuple[str, ...]


# Subfolders of a project's own folder, and who may read them. Item images and imported outputs
# are what an annotator is shown; ground truth is not (the items API keeps it from them too).
_PROJECT_FOLDERS = {
    "items": ANY_MEMBER,
    "outputs": ANY_MEMBER,
    "ground_truth": READERS,
    "checkpoints": ADMINS,
    "reward_models": ADMINS,
}
_PROJECT_FILE = re.compile(r"projects/(?P<project>\d+)/(?P<folder>[^/]+)/.+")
# Everything of a tuning run is for the project's admins, like the run itself.
_RUN_FILE = re.compile(r"tuning/runs/(?P<run>\d+)/.+")


def media_rule(name: str) -> MediaRule | None:
    """Who may read the media file `name` (relative to MEDIA_ROOT); None when no one may.

    The name must be in its plain form: `projects/1/items/../../2/items/x.png` would pass the
    first project's rule and open the second's file."""
    if any(part in ("", ".", "..") for part in name.split("/")) or "\\" in name:
        return None
    if match := _PROJECT_FILE.fullmatch(name):
        roles = _PROJECT_FOLDERS.get(match["folder"])
        return None if roles is None else MediaRule(int(match["project"]), roles)
    if match := _RUN_FILE.fullmatch(name):
        project_id = (TuningRun.objects.filter(pk=int(match["run"]))
                      .values_list("project_id", flat=True).first())
        return None if project_id is None else MediaRule(project_id, ADMINS)
    return None


def _user(request: HttpRequest) -> AbstractBaseUser | None:
    """The session's user, or a token's (API clients fetch the URLs the API hands them)."""
    if request.user.is_authenticated:
        return request.user
    try:
        found = TokenAuthentication().authenticate(Request(request))
    except AuthenticationFailed:
        found = None
    return found[0] if found else None


def _may_read(user: AbstractBaseUser, rule: MediaRule) -> bool:
    # Superusers see every project in the Django admin, thumbnails included.
    return user.is_superuser or Membership.objects.filter(
        project_id=rule.project_id, user=user, role__in=rule.roles
    ).exists()


def _file_response(name: str, path: Path) -> HttpResponseBase:
    if settings.TUNELAB_MEDIA_ACCEL:
        response = HttpResponse()
        response["X-Accel-Redirect"] = ACCEL_PREFIX + quote(name)
        content_type, encoding = mimetypes.guess_type(name)
        response["Content-Type"] = content_type or "application/octet-stream"
        if encoding:
            response["Content-Encoding"] = encoding
    else:
        response = FileResponse(path.open("rb"))
    # Each answer depends on who asks: no shared cache may keep it.
    response["Cache-Control"] = "private, no-cache"
    return response


@require_safe
def media_file(request: HttpRequest, name: str) -> HttpResponseBase:
    """The file `name` under MEDIA_ROOT, for those `media_rule` lets read it; 404 otherwise
    (unknown names, missing files, other projects), and the login page for the anonymous."""
    user = _user(request)
    if user is None:
        return redirect_to_login(request.get_full_path())
    rule = media_rule(name)
    if rule is None or not _may_read(user, rule):
        raise Http404("No such file.")
    try:
        path = Path(safe_join(settings.MEDIA_ROOT, name))
    except SuspiciousFileOperation:
        raise Http404("No such file.") from None
    if not path.is_file():
        raise Http404("No such file.")
    return _file_response(name, path)
