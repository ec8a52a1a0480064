"""REST endpoints for projects, their items and candidates (docs/api.md). Views are thin: they
check the caller's role, call a selector and serialize what it returns."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.integers import IdField
from common.permissions import ANY_MEMBER, READERS, project_for
from projects.models import Candidate, Item, Project, Role
from projects.selectors import candidates_of, items_of, projects_for_user


class ProjectOutput(serializers.ModelSerializer):
    role = serializers.ChoiceField(choices=Role.choices, read_only=True,
                                   help_text="The caller's role in the project.")

    class Meta:
        model = Project
        fields = ["id", "name", "task", "rating_mode", "ranking_k", "overlap", "instructions",
                  "categories", "role"]


class WithoutProvenance(serializers.ModelSerializer):
    """Leaves `Meta.provenance` fields out for a caller who may not see them (an annotator):
    the keys themselves are absent, not null. The view puts the caller's role in the context."""

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        if self.context.get("role") not in READERS:
            for name in self.Meta.provenance:
                fields.pop(name)
        return fields


class ItemOutput(WithoutProvenance):
    image_url = serializers.SerializerMethodField()

    class Meta:
        model = Item
        fields = ["id", "file_name", "image_url", "width", "height", "ground_truth"]
        provenance = ["ground_truth"]

    @extend_schema_field(OpenApiTypes.STR)
    def get_image_url(self, item: Item) -> str:
        return item.image.url


class CandidateOutput(WithoutProvenance):
    model_version_name = serializers.CharField(source="model_version.name", read_only=True)
    output = serializers.JSONField()

    class Meta:
        model = Candidate
        fields = ["id", "item", "model_version", "model_version_name", "sample_index", "output"]
        provenance = ["model_version", "model_version_name"]


class ProjectListApi(APIView):
    @extend_schema(responses=ProjectOutput(many=True), summary="The caller's projects")
    def get(self, request: Request) -> Response:
        return Response(ProjectOutput(projects_for_user(request.user), many=True).data)


class ProjectDetailApi(APIView):
    @extend_schema(responses=ProjectOutput, summary="One project")
    def get(self, request: Request, project_id: int) -> Response:
        project = project_for(request.user, project_id, roles=ANY_MEMBER)
        return Response(ProjectOutput(project).data)


class MemberListApi(generics.ListAPIView):
    """A list of one project's rows, for any member; the serializer learns the caller's role."""

    def get_serializer_context(self) -> dict:
        # The OpenAPI schema is built without a request: it documents every field.
        fake = getattr(self, "swagger_fake_view", False)
        role = Role.ADMIN if fake else self.project.role
        return {**super().get_serializer_context(), "role": role}

    def get_queryset(self):
        self.project = project_for(self.request.user, self.kwargs["project_id"],
                                   roles=ANY_MEMBER)
        return self.rows(self.project)


class ItemListApi(MemberListApi):
    """The project's items (images), paginated; `ground_truth` is left out for annotators."""

    serializer_class = ItemOutput

    def rows(self, project: Project):
        return items_of(project)


class CandidateFilter(serializers.Serializer):
    item = IdField(required=False, help_text="Only the candidates of this item.")


@extend_schema(parameters=[CandidateFilter])
class CandidateListApi(MemberListApi):
    """The project's candidates (model outputs), paginated; `?item=` for one item's. Annotators
    get neither `model_version` nor `model_version_name`: their comparisons stay blind."""

    serializer_class = CandidateOutput

    def rows(self, project: Project):
        query = CandidateFilter(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return candidates_of(project, item_id=query.validated_data.get("item"))
