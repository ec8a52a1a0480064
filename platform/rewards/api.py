"""REST endpoints of reward models, for project admins only.

- `GET|POST /api/projects/{id}/reward-models/`: list, launch training
- `GET /api/reward-models/{id}/`: one reward model (status, snapshot, held-out accuracy)
"""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.integers import IdField
from common.permissions import ADMINS, project_for
from projects.models import ModelVersion
from projects.selectors import in_project
from rewards.selectors import reward_model_for, reward_models_of
from rewards.services import reward_model_launch


class RewardModelInput(serializers.Serializer):
    name = serializers.CharField(required=False, default="", allow_blank=True, max_length=200)
    config = serializers.DictField(default=dict, help_text="RewardModelConfig fields.")
    policy = IdField(
        required=False, allow_null=True,
        help_text="Id of the ModelVersion (a detection checkpoint) that readout 'policy' "
                  "starts from.",
    )


class RewardModelOutput(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.IntegerField(source="project_id")
    name = serializers.CharField()
    snapshot = serializers.JSONField()
    config = serializers.JSONField()
    policy = serializers.IntegerField(source="policy_id", allow_null=True)
    status = serializers.CharField()
    heldout_accuracy = serializers.FloatField(allow_null=True)
    metrics = serializers.JSONField()
    error = serializers.CharField()
    attempts = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class ProjectRewardModelsApi(APIView):
    @extend_schema(responses=RewardModelOutput(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        project = project_for(request.user, project_id, roles=ADMINS)
        return Response(RewardModelOutput(reward_models_of(project), many=True).data)

    @extend_schema(request=RewardModelInput, responses={201: RewardModelOutput})
    def post(self, request: Request, project_id: int) -> Response:
        project = project_for(request.user, project_id, roles=ADMINS)
        body = RewardModelInput(data=request.data)
        body.is_valid(raise_exception=True)
        params = body.validated_data
        reward_model = reward_model_launch(
            project=project, name=params["name"], config=params["config"],
            policy=in_project(ModelVersion, params.get("policy"), project.pk, "policy"),
            created_by=request.user,
        )
        return Response(RewardModelOutput(reward_model).data, status=status.HTTP_201_CREATED)


class RewardModelApi(APIView):
    @extend_schema(responses=RewardModelOutput)
    def get(self, request: Request, reward_model_id: int) -> Response:
        return Response(RewardModelOutput(reward_model_for(request.user, reward_model_id)).data)
