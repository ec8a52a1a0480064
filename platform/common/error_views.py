"""Django's error views (config.urls' handlers, CSRF_FAILURE_VIEW), in JSON under /api/.

DRF's views and the plain API views answer their own errors in the API's shape (common.errors);
these answer what happens before or around them: a path no route matches, a request Django
refuses to read, a CSRF failure, a crash. A client of /api/ gets `{"detail", "errors"}` for
each; every other path keeps Django's pages.
"""

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.views import csrf, defaults
from rest_framework import status

from common.errors import REQUEST_REFUSALS, request_refused
from common.plain_api import json_response

API_PREFIX = "/api/"


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def _error(detail: str, code: int) -> HttpResponse:
    return json_response({"detail": detail, "errors": {}}, code)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not _is_api(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, REQUEST_REFUSALS):
        return _error(request_refused(exception).message, status.HTTP_400_BAD_REQUEST)
    return _error("Bad request.", status.HTTP_400_BAD_REQUEST)


def permission_denied(request: HttpRequest, exception: PermissionDenied) -> HttpResponse:
    if not _is_api(request):
        return defaults.permission_denied(request, exception)
    return _error("You do not have permission to perform this action.",
                  status.HTTP_403_FORBIDDEN)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not _is_api(request):
        return defaults.page_not_found(request, exception)
    return _error("Not found.", status.HTTP_404_NOT_FOUND)


def server_error(request: HttpRequest) -> HttpResponse:
    if not _is_api(request):
        return defaults.server_error(request)
    # What went wrong is in the server's log, never in the answer.
    return _error("Server error.", status.HTTP_500_INTERNAL_SERVER_ERROR)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    if not _is_api(request):
        return csrf.csrf_failure(request, reason)
    # DRF's wording for the same failure (SessionAuthentication.enforce_csrf).
    return _error(f"CSRF Failed: {reason}", status.HTTP_403_FORBIDDEN)
