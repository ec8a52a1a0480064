"""The one application error type, and the DRF exception handler that turns errors into JSON.

Services raise `ApplicationError(message, field=...)`; views never catch it. Every error the API
returns has the shape `{"detail": "...", "errors": {"field": ["message", ...]}}`: DRF's views
through `exception_handler`, the plain views through `error_body`, and what neither sees (no
route, a crash) through common.error_views.
"""

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class ApplicationError(Exception):
    """A request the platform refuses, with the field at fault when there is one."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        errors: dict[str, list[str]] | None = None,
        status_code: int = status.HTTP_400_BAD_REQUEST,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors if errors is not None else ({field: [message]} if field else {})
        self.status_code = status_code


def _field_errors(detail: Any) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        return {
            str(key): [str(v) for v in (value if isinstance(value, list) else [value])]
            for key, value in detail.items()
        }
    if isinstance(detail, list):
        return {"non_field_errors": [str(v) for v in detail]}
    return {}


def _first_message(errors: dict[str, list[str]], fallback: str) -> str:
    for field, messages in errors.items():
        if messages:
            return messages[0] if field == "non_field_errors" else f"{field}: {messages[0]}"
    return fallback


# Django refuses these requests while reading them (SuspiciousOperation: a 400).
REQUEST_REFUSALS = (RequestDataTooBig, TooManyFieldsSent)


def request_refused(exc: RequestDataTooBig | TooManyFieldsSent) -> ApplicationError:
    """The 400 for a request Django refuses to read, saying which limit it passed."""
    if isinstance(exc, RequestDataTooBig):
        return ApplicationError(
            f"The request body is over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes, the most "
            "one request may send (files excepted)."
        )
    return ApplicationError(
        f"The request has over {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS:,} fields, the most one "
        "request may send."
    )


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's handler, plus ApplicationError, Django's ValidationError and the requests Django
    refuses to read, in one JSON shape."""
    if isinstance(exc, REQUEST_REFUSALS):
        exc = request_refused(exc)
    if isinstance(exc, ApplicationError):
        return Response(
            {"detail": exc.message, "errors": exc.errors}, status=exc.status_code
        )
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = _field_errors(exc.detail)
        response.data = {"detail": _first_message(errors, "Invalid input."), "errors": errors}
    elif isinstance(response.data, dict) and "detail" in response.data:
        response.data = {"detail": str(response.data["detail"]), "errors": {}}
    return response


def error_body(
    exc: ApplicationError | Http404 | exceptions.APIException | RequestDataTooBig
    | TooManyFieldsSent,
) -> tuple[int, dict]:
    """(status, body) of an error outside DRF's views (common.plain_api), in the shape and with
    the messages `exception_handler` gives DRF's views."""
    if isinstance(exc, REQUEST_REFUSALS):
        exc = request_refused(exc)
    if isinstance(exc, ApplicationError):
        return exc.status_code, {"detail": exc.message, "errors": exc.errors}
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    if isinstance(exc, exceptions.ValidationError):
        errors = _field_errors(exc.detail)
        return exc.status_code, {"detail": _first_message(errors, "Invalid input."),
                                 "errors": errors}
    return exc.status_code, {"detail": str(exc.detail), "errors": {}}
