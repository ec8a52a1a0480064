"""The import endpoint: `POST /api/projects/{id}/import/`, multipart, project admins only.

Fields (all optional, at least one): `images` (a .zip, or image files), `instances`, `results`
and `model_version` (detection: COCO instances and COCO results; captioning: COCO captions as
`captions` and caption results as `results`), `colorized` (a .zip or images named like the
items), `panoptic_json` and `panoptic_pngs` (a .zip or PNGs; with `model_version` they are
outputs, without it ground truth). 201 with counts; 400 with every problem by file name and
nothing imported.
"""

from dataclasses import asdict

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.permissions import ADMINS, project_for
from ingest.services import ImportFiles, dataset_import
from ingest.sources import PNG_SUFFIXES, JsonFile, file_set_from_uploads


class ImportInputSerializer(serializers.Serializer):
    images = serializers.ListField(child=serializers.FileField(), required=False)
    instances = serializers.FileField(required=False)
    results = serializers.FileField(required=False)
    model_version = serializers.CharField(required=False, max_length=200)
    captions = serializers.FileField(required=False)
    colorized = serializers.ListField(child=serializers.FileField(), required=False)
    panoptic_json = serializers.FileField(required=False)
    panoptic_pngs = serializers.ListField(child=serializers.FileField(), required=False)


class ImportOutputSerializer(serializers.Serializer):
    items_created = serializers.IntegerField()
    ground_truth_set = serializers.IntegerField()
    model_version = serializers.CharField(allow_null=True)
    candidates_created = serializers.IntegerField()
    tasks_created = serializers.IntegerField()


def _json(upload: object | None) -> JsonFile | None:
    return None if upload is None else JsonFile(upload.name, upload.read())


class ImportApi(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request={"multipart/form-data": ImportInputSerializer},
                   responses={201: ImportOutputSerializer})
    def post(self, request: Request, project_id: int) -> Response:
        project = project_for(request.user, project_id, roles=ADMINS)
        form = ImportInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        files = ImportFiles(
            images=file_set_from_uploads("images", data["images"]) if "images" in data
            else None,
            instances=_json(data.get("instances")),
            results=_json(data.get("results")),
            captions=_json(data.get("captions")),
            colorized=file_set_from_uploads("colorized", data["colorized"])
            if "colorized" in data else None,
            panoptic_json=_json(data.get("panoptic_json")),
            panoptic_pngs=file_set_from_uploads("panoptic_pngs", data["panoptic_pngs"],
                                                PNG_SUFFIXES)
            if "panoptic_pngs" in data else None,
        )
        summary = dataset_import(project=project, files=files,
                                 model_version=data.get("model_version"))
        return Response(ImportOutputSerializer(asdict(summary)).data,
                        status=status.HTTP_201_CREATED)
