"""The OpenAPI schema's error responses, declared by one rule for every operation.

drf-spectacular declares what a view's @extend_schema names (its success codes, mostly). The
errors follow from how the API works, so `AutoSchema` adds them to each operation unless the
view declares that code itself, all with the error body (common.errors):

- 400 where input is read: a request body, a query parameter, or an unsafe method (a service
  refuses it, a body is too big);
- 401 where a caller authenticates (no credentials, or a bad token);
- 403 on unsafe methods (CSRF for session callers) and where an id in the path is checked
  against the caller's role;
- 404 where the path has an id (unknown, past the id range, or not visible), on paginated
  lists (a page past the end) and where `?format=` picks DRF's renderer (an unknown one);
- 415 where a body is read (another media type).

409 is the views' own to declare (`conflict`), where a state can refuse the request.
"""

from typing import Any

from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


class ErrorOutput(serializers.Serializer):
    detail = serializers.CharField(help_text="What is wrong, in a sentence.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Messages by field (or by file, for an import); empty when no field is at "
                  "fault.",
    )


def error_response(description: str) -> OpenApiResponse:
    """An error response for @extend_schema(responses={code: ...}) with the error body."""
    return OpenApiResponse(ErrorOutput, description=description)


def conflict(description: str) -> dict[int, OpenApiResponse]:
    """The 409 of an operation that a state can refuse: `responses={..., **conflict("...")}`."""
    return {409: error_response(description)}


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's AutoSchema, with the error responses of the module docstring."""

    def get_operation(self, *args: Any, **kwargs: Any) -> dict | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        responses = operation["responses"]
        for code, description in self._errors(operation).items():
            if str(code) not in responses:
                responses[str(code)] = self._get_response_for_code(
                    error_response(description), str(code), direction="response"
                )
        return operation

    def _errors(self, operation: dict) -> dict[int, str]:
        parameters = operation.get("parameters", [])
        in_path = any(p["in"] == "path" for p in parameters)
        in_query = any(p["in"] == "query" for p in parameters)
        body = "requestBody" in operation
        unsafe = self.method in UNSAFE_METHODS
        errors: dict[int, str] = {}
        if body or in_query or unsafe:
            errors[400] = "Bad input: `errors` names the field (or the file)."
        if self.view.get_authenticators():
            errors[401] = "Not authenticated, or a bad token."
        if unsafe or (in_path and self.view.get_authenticators()):
            errors[403] = "Not allowed: your role in the project, or a session without CSRF."
        if in_path or any(p["name"] in ("page", "format") and p["in"] == "query"
                          for p in parameters):
            errors[404] = "No such object visible to you (or no such page)."
        if body:
            errors[415] = "A body of another media type than the ones listed."
        return errors
