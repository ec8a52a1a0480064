"""The import endpoint: `POST /api/projects/{id}/import/`, multipart, project admins only.

Fields (all optional, at least one): `images` (a .zip, or image files), `instances`, `results`
and `model_version` (detection: COCO instances and COCO results; captioning: COCO captions as
`captions` and caption results as `results`), `colorized` (a .zip or images named like the
items), `panoptic_json` and `panoptic_pngs` (a .zip or PNGs; with `model_version` they are
outputs, without it ground truth); or, alone, `dataset`: a dataset archive of Tunelab's export
(`format=dataset`) into a new, empty project. 201 with counts; 400 with every problem by file
name and nothing imported.
"""

from dataclasses import asdict

from django.conf import settings
from django.core.exceptions import TooManyFilesSent
from django.core.files.uploadedfile import UploadedFile
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.errors import ApplicationError
from common.permissions import ADMINS, project_for
from ingest.dataset_archive import ArchiveFiles
from ingest.planning import ImportFiles
from ingest.services import dataset_archive_import, dataset_import
from ingest.sources import MAX_JSON_BYTES, PNG_SUFFIXES, JsonFile, file_set_from_uploads


class ImportInputSerializer(serializers.Serializer):
    images = serializers.ListField(child=serializers.FileField(), required=False)
    instances = serializers.FileField(required=False)
    results = serializers.FileField(required=False)
    model_version = serializers.CharField(required=False, max_length=200)
    captions = serializers.FileField(required=False)
    colorized = serializers.ListField(child=serializers.FileField(), required=False)
    panoptic_json = serializers.FileField(required=False)
    panoptic_pngs = serializers.ListField(child=serializers.FileField(), required=False)
    dataset = serializers.FileField(
        required=False, help_text="A dataset archive (.zip of the export's format=dataset), "
                                  "alone, into a project with no items.")


class ImportOutputSerializer(serializers.Serializer):
    items_created = serializers.IntegerField()
    ground_truth_set = serializers.IntegerField()
    model_version = serializers.CharField(allow_null=True)
    candidates_created = serializers.IntegerField()
    tasks_created = serializers.IntegerField()
    answers_imported = serializers.IntegerField(required=False,
                                                help_text="Dataset archives only.")


def _json(field: str, upload: UploadedFile | None) -> JsonFile | None:
    if upload is None:
        return None
    if upload.size > MAX_JSON_BYTES:
        raise ApplicationError(f"{upload.name} is over {MAX_JSON_BYTES:,} bytes.", field=field)
    return JsonFile(upload.name, upload.read())


def _archive(upload: UploadedFile, others: dict) -> ArchiveFiles:
    if others:
        raise ApplicationError(
            f"A dataset archive is imported alone; drop {', '.join(sorted(others))}.",
            field="dataset")
    upload.seek(0)
    return ArchiveFiles(upload.name, upload)


class ImportApi(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request={"multipart/form-data": ImportInputSerializer},
                   responses={201: ImportOutputSerializer})
    def post(self, request: Request, project_id: int) -> Response:
        project = project_for(request.user, project_id, roles=ADMINS)
        try:
            body = request.data
        except TooManyFilesSent:
            raise ApplicationError(
                f"More than {settings.DATA_UPLOAD_MAX_NUMBER_FILES} files in one request: "
                "upload a .zip of them instead.", field="images",
            ) from None
        form = ImportInputSerializer(data=body)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        if "dataset" in data:
            summary = dataset_archive_import(project=project,
                                             archive=_archive(data.pop("dataset"), data))
            return Response(ImportOutputSerializer(asdict(summary)).data,
                            status=status.HTTP_201_CREATED)
        files = ImportFiles(
            images=file_set_from_uploads("images", data["images"]) if "images" in data
            else None,
            instances=_json("instances", data.get("instances")),
            results=_json("results", data.get("results")),
            captions=_json("captions", data.get("captions")),
            colorized=file_set_from_uploads("colorized", data["colorized"])
            if "colorized" in data else None,
            panoptic_json=_json("panoptic_json", data.get("panoptic_json")),
            panoptic_pngs=file_set_from_uploads("panoptic_pngs", data["panoptic_pngs"],
                                                PNG_SUFFIXES)
            if "panoptic_pngs" in data else None,
        )
        summary = asdict(dataset_import(project=project, files=files,
                                        model_version=data.get("model_version")))
        del summary["answers_imported"]
        return Response(ImportOutputSerializer(summary).data, status=status.HTTP_201_CREATED)
