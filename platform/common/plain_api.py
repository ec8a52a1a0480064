"""Plain Django JSON views for the API's hot paths (the annotation queue), with DRF's rules.

The same authentication as DRF's views (TokenAuthentication, then SessionAuthentication with its
CSRF check; 401 with `WWW-Authenticate: Token` when neither), the same error shape
(`{"detail", "errors"}`, common.errors) and the same JSON rendering, without DRF's per-request
machinery (Request wrapping, content negotiation, serializers), which cost more CPU than the
queue's work.

Tokens are looked up once per process and kept for `API_TOKEN_CACHE_SECONDS` (setting, 10 s by
default, 0 to turn off): deleting a token or deactivating or deleting its user forgets the
process's cache at once (signals, connected in common.apps); other processes notice within that
time.
"""

import functools
import json
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, serializers
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from common.errors import REQUEST_REFUSALS, ApplicationError, error_body
from common.json_input import parse_json

_tokens: dict[str, tuple[int, float]] = {}  # key -> (user id, monotonic expiry)
_MAX_TOKENS = 10_000


def forget_tokens(**_: Any) -> None:
    """Drop this process's cached tokens (a token or a user changed)."""
    _tokens.clear()


def _token_user_id(key: str) -> int:
    now = time.monotonic()
    cached = _tokens.get(key)
    if cached is not None and cached[1] > now:
        return cached[0]
    row = (
        Token.objects.filter(key=key).values_list("user_id", "user__is_active").first()
    )
    if row is None:
        raise exceptions.AuthenticationFailed("Invalid token.")
    user_id, active = row
    if not active:
        raise exceptions.AuthenticationFailed("User inactive or deleted.")
    seconds = getattr(settings, "API_TOKEN_CACHE_SECONDS", 10)
    if seconds > 0:
        if len(_tokens) >= _MAX_TOKENS:
            _tokens.clear()
        _tokens[key] = (user_id, now + seconds)
    return user_id


class _CachedTokenAuthentication(TokenAuthentication):
    """DRF's token header parsing and messages; the user's id from the cache."""

    def authenticate_credentials(self, key: str) -> tuple[int, None]:
        return _token_user_id(key), None


_token_auth = _CachedTokenAuthentication()
_session_auth = SessionAuthentication()


def authenticated_user_id(request: HttpRequest) -> int:
    """The caller's user id: by token, else by session (with the CSRF check on unsafe
    methods). AuthenticationFailed or NotAuthenticated (401), PermissionDenied (403, CSRF).

    A user forced by DRF's APIClient/APIRequestFactory (`force_authenticate`, in-process
    callers such as rewards.simulated; never set from HTTP) is taken as DRF takes it.
    """
    forced = getattr(request, "_force_auth_user", None)
    if forced is not None:
        return forced.pk
    by_token = _token_auth.authenticate(request)
    if by_token is not None:
        return by_token[0]
    user = getattr(request, "user", None)
    if user is None or not user.is_active:
        raise exceptions.NotAuthenticated()
    _session_auth.enforce_csrf(request)
    return user.pk


def json_body(request: HttpRequest) -> Any:
    """The request's JSON body ({} when empty); other media types through DRF's parsers, as a
    DRF view would take them. ParseError or UnsupportedMediaType otherwise (RequestDataTooBig
    past DATA_UPLOAD_MAX_MEMORY_SIZE)."""
    if request.content_type == "application/json":
        if not request.body:
            return {}
        try:
            return parse_json(request.body)
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from exc
    parsers = [parser() for parser in api_settings.DEFAULT_PARSER_CLASSES]
    return Request(request, parsers=parsers).data


def validated(serializer_class: type[serializers.Serializer], data: Any) -> dict:
    """`data` checked by the endpoint's serializer: its validated data, or ValidationError."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def iso_datetime(value) -> str | None:
    """A datetime as DRF renders it: ISO 8601, UTC as Z."""
    if value is None:
        return None
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def json_response(data: Any, status: int = 200) -> HttpResponse:
    """`data` rendered as DRF's JSONRenderer does (compact, UTF-8, no NaN)."""
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return HttpResponse(body.encode(), status=status, content_type="application/json")


def _error_response(exc: Exception, methods: tuple[str, ...]) -> HttpResponse:
    status, body = error_body(exc)
    response = json_response(body, status)
    if status == 401:
        response["WWW-Authenticate"] = "Token"
    if status == 405:
        response["Allow"] = ", ".join(methods)
    return response


def plain_api(*, methods: tuple[str, ...], documented_by: type[APIView]) -> Callable:
    """Make `view(request, **kwargs) -> HttpResponse` an API endpoint: CSRF is checked only for
    session callers (as DRF does), errors become JSON, other methods 405 (with `Allow`);
    `documented_by` (a DRF view with the endpoint's @extend_schema) puts it in the OpenAPI
    schema."""

    def wrap(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @csrf_exempt
        @functools.wraps(view)
        def endpoint(request: HttpRequest, **kwargs: Any) -> HttpResponse:
            try:
                if request.method not in methods:
                    authenticated_user_id(request)  # DRF answers 401 before 405
                    raise exceptions.MethodNotAllowed(request.method)
                return view(request, **kwargs)
            except (ApplicationError, Http404, exceptions.APIException, *REQUEST_REFUSALS) as exc:
                return _error_response(exc, methods)

        endpoint.cls = documented_by  # what drf-spectacular reads
        endpoint.initkwargs = {}
        return endpoint

    return wrap


def connect_signals() -> None:
    """Forget cached tokens when a token or a user (deactivated, deleted) changes."""
    from django.db.models.signals import post_delete, post_save

    for model in (Token, get_user_model()):
        post_save.connect(forget_tokens, sender=model, dispatch_uid=f"forget_tokens_{model}")
        post_delete.connect(forget_tokens, sender=model, dispatch_uid=f"forget_tokens_d_{model}")
