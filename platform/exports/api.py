"""The export endpoint: `GET /api/projects/{id}/export/?format=json|jsonl|csv|dataset&...`.

Project admins only. `json` answers one page (`page`, `page_size`); `jsonl` and `csv` stream the
whole selection with constant memory, and so does `dataset`, a .zip of the rows with their
outputs, images and a dataset card (`exports.archive`). `include=outputs` puts each shown
candidate's output and the item's image into the rows of the other formats.
"""

from datetime import UTC, datetime, time

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.http import StreamingHttpResponse
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param
from rest_framework.views import APIView

from common.integers import BIGINT_MAX
from common.permissions import ADMINS, project_for
from exports.archive import dataset_archive_chunks
from exports.outputs import OutputForms, UrlRefs
from exports.selectors import (
    EXPORT_FIELDS,
    ExportFilters,
    answer_count,
    answers_for_export,
    project_annotator,
)
from exports.writers import WITH_OUTPUTS, csv_chunks, jsonl_chunks, rows_as_dicts
from projects.models import ModelVersion, Project

MAX_PAGE_SIZE = 1000
MAX_PAGE = BIGINT_MAX // MAX_PAGE_SIZE  # so that the page's offset is a number SQL takes
_STREAMS = {
    "jsonl": (jsonl_chunks, "application/x-ndjson; charset=utf-8"),
    "csv": (csv_chunks, "text/csv; charset=utf-8"),
}


@extend_schema_field(OpenApiTypes.STR)
class MomentField(serializers.Field):
    """An ISO 8601 date-time, or a date (midnight UTC); without a zone, UTC."""

    default_error_messages = {
        "invalid": "Expected an ISO 8601 date or date-time, e.g. 2026-11-27 or "
                   "2026-11-27T12:00:00Z; got {value!r}.",
    }

    def to_internal_value(self, data: str) -> datetime:
        try:
            moment = parse_datetime(data)
            if moment is None and (day := parse_date(data)) is not None:
                moment = datetime.combine(day, time.min)
        except ValueError:  # well-formed but impossible, like 2026-02-30
            moment = None
        if moment is None:
            self.fail("invalid", value=data)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    def to_representation(self, value: datetime) -> str:
        return value.isoformat()


class ExportQuerySerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=["json", "jsonl", "csv", "dataset"], default="json")
    include = serializers.ChoiceField(
        choices=["outputs"], required=False,
        help_text="outputs: each shown candidate's output and the item's image in every row "
                  "(a dataset archive always has them).",
    )
    model_version = serializers.CharField(required=False, help_text="A model version's name.")
    annotator = serializers.CharField(required=False, help_text="An annotator's username.")
    since = MomentField(required=False, help_text="Answers created at or after this moment.")
    until = MomentField(required=False, help_text="Answers created before this moment.")
    page = serializers.IntegerField(min_value=1, max_value=MAX_PAGE, default=1,
                                    help_text="json only.")
    page_size = serializers.IntegerField(
        min_value=1, max_value=MAX_PAGE_SIZE, required=False, help_text="json only."
    )

    def validate_model_version(self, name: str) -> ModelVersion:
        version = ModelVersion.objects.filter(project=self.context["project"], name=name).first()
        if version is None:
            raise serializers.ValidationError(f"No model version named {name!r} in this project.")
        return version

    def validate_annotator(self, username: str) -> AbstractBaseUser:
        user = project_annotator(project=self.context["project"], username=username)
        if user is None:
            raise serializers.ValidationError(
                f"No annotator named {username!r} in this project.")
        return user

    def validate(self, attrs: dict) -> dict:
        since, until = attrs.get("since"), attrs.get("until")
        if since and until and since >= until:
            raise serializers.ValidationError({"until": ["Must be later than since."]})
        return attrs


class ExportApi(APIView):
    # `format` is this endpoint's own parameter, not DRF's renderer override: every response
    # that is not a stream is JSON.
    def perform_content_negotiation(self, request: Request, force: bool = False):
        return JSONRenderer(), JSONRenderer.media_type

    @extend_schema(
        parameters=[ExportQuerySerializer],
        responses={200: OpenApiResponse(description="A page of rows (json) or a stream.")},
    )
    def get(self, request: Request, project_id: int) -> Response | StreamingHttpResponse:
        project = project_for(request.user, project_id, roles=ADMINS)
        query = ExportQuerySerializer(data=request.query_params, context={"project": project})
        query.is_valid(raise_exception=True)
        params = query.validated_data
        filters = ExportFilters(
            model_version=params.get("model_version"), annotator=params.get("annotator"),
            since=params.get("since"), until=params.get("until"),
        )
        outputs = OutputForms(project, UrlRefs()) if params.get("include") else None
        fields = WITH_OUTPUTS if outputs else EXPORT_FIELDS
        if params["format"] == "json":
            return self._page(request, project, filters, params, outputs, fields)
        if params["format"] == "dataset":
            chunks = dataset_archive_chunks(project=project, filters=filters)
            content_type, name = "application/zip", "dataset.zip"
        else:
            write, content_type = _STREAMS[params["format"]]
            chunks = write(answers_for_export(project=project, filters=filters,
                                              outputs=outputs), fields)
            name = f"answers.{params['format']}"
        response = StreamingHttpResponse(chunks, content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="project-{project.pk}-{name}"'
        return response

    def _page(
        self, request: Request, project: Project, filters: ExportFilters, params: dict,
        outputs: OutputForms | None, fields: tuple[str, ...],
    ) -> Response:
        size = params.get("page_size") or settings.REST_FRAMEWORK["PAGE_SIZE"]
        page = params["page"]
        count = answer_count(project=project, filters=filters)
        rows = rows_as_dicts(answers_for_export(
            project=project, filters=filters, offset=(page - 1) * size, limit=size,
            outputs=outputs,
        ), fields)
        url = request.build_absolute_uri()
        previous = None
        if page > 1:
            previous = (replace_query_param(url, "page", page - 1) if page > 2
                        else remove_query_param(url, "page"))
        return Response({
            "count": count,
            "next": replace_query_param(url, "page", page + 1) if page * size < count else None,
            "previous": previous,
            "results": rows,
        })
