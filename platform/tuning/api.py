"""REST endpoints of tuning runs, for project admins only.

- `GET|POST /api/projects/{id}/tuning-runs/`: list, launch
- `GET /api/tuning-runs/{id}/`: one run (progress, worker, heartbeat, error, result and its
  held-out selection)
- `POST /api/tuning-runs/{id}/cancel/`, `POST /api/tuning-runs/{id}/retry/`
- `GET /api/tuning-runs/{id}/metrics/?after=<step>`: logged steps past `after` (live curves)
- `POST /api/model-versions/{id}/generate-candidates/`: the version's outputs on the project's
  items become candidates to rate (a task on the `gpu` queue; 202)
"""

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.integers import INT_MAX, IdField
from common.permissions import ADMINS, project_for
from common.schema import conflict
from projects.models import ModelVersion
from projects.selectors import in_project
from rewards.models import RewardModel
from tuning.candidates import MAX_SAMPLES, candidates_generate
from tuning.hacking import run_reward_hacking
from tuning.models import RewardKind, TuningRun
from tuning.selection import run_selection
from tuning.selectors import run_for, runs_of, steps_of
from tuning.services import (
    SAVE_EVERY_MAX,
    tuning_run_cancel,
    tuning_run_launch,
    tuning_run_retry,
)

STEPS_PER_PAGE = 1000


class TuningRunInput(serializers.Serializer):
    start_version = IdField(help_text="Id of the ModelVersion to tune.")
    reward = serializers.ChoiceField(choices=RewardKind.choices, default=RewardKind.METRIC)
    reward_model = IdField(required=False, allow_null=True,
                           help_text="Id of a RewardModel (learned reward).")
    config = serializers.DictField(default=dict, help_text="trainer TuneConfig fields.")
    data = serializers.DictField(default=dict, help_text='trainer DataConfig fields, or '
                                 '{"source": "project"}: the project\'s own images.')
    save_every = serializers.IntegerField(default=50, min_value=1, max_value=SAVE_EVERY_MAX,
                                          help_text="Steps between checkpoints.")


class VersionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    metrics = serializers.JSONField()


class TuningRunOutput(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.IntegerField(source="project_id")
    start_version = VersionOutput()
    reward = serializers.CharField()
    reward_model = serializers.IntegerField(source="reward_model_id", allow_null=True)
    config = serializers.JSONField()
    data = serializers.JSONField(source="data_config")
    save_every = serializers.IntegerField()
    status = serializers.CharField()
    step = serializers.IntegerField()
    total_steps = serializers.IntegerField()
    heartbeat_at = serializers.DateTimeField(allow_null=True)
    worker = serializers.CharField()
    attempts = serializers.IntegerField()
    error = serializers.CharField()
    result_version = VersionOutput(allow_null=True)
    samples = serializers.JSONField(help_text='[{"image_url", "width", "height", "before", '
                                              '"after"}]: outputs of both models.')
    selection = serializers.SerializerMethodField(
        help_text='Held-out selection of the finished run: {"enabled", "metric", "name", '
                  '"source" (ground_truth or learned_reward), "images", "start_metric", '
                  '"best_metric", "best_step", "improved", "history", "summary"}; null before.')
    reward_hacking = serializers.SerializerMethodField(
        help_text='For a learned reward: {"learned", "gold" (the step metrics compared), '
                  '"hacking" (true when the learned reward rose while the gold metric fell; '
                  'null while too few steps are logged), "summary"}; null for a metric reward.')
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)

    def get_selection(self, run: TuningRun) -> dict | None:
        return run_selection(run)

    def get_reward_hacking(self, run: TuningRun) -> dict | None:
        return run_reward_hacking(run)


class StepOutput(serializers.Serializer):
    step = serializers.IntegerField()
    metrics = serializers.JSONField()


class MetricsQuery(serializers.Serializer):
    after = serializers.IntegerField(required=False, min_value=-1, max_value=INT_MAX,
                                     help_text="Only steps after this one.")


class MetricsOutput(serializers.Serializer):
    status = serializers.CharField()
    step = serializers.IntegerField()
    total_steps = serializers.IntegerField()
    steps = StepOutput(many=True)


class ProjectTuningRunsApi(APIView):
    @extend_schema(responses=TuningRunOutput(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        project = project_for(request.user, project_id, roles=ADMINS)
        return Response(TuningRunOutput(runs_of(project), many=True).data)

    @extend_schema(request=TuningRunInput, responses={201: TuningRunOutput})
    def post(self, request: Request, project_id: int) -> Response:
        project = project_for(request.user, project_id, roles=ADMINS)
        body = TuningRunInput(data=request.data)
        body.is_valid(raise_exception=True)
        params = body.validated_data
        run = tuning_run_launch(
            project=project,
            start_version=in_project(ModelVersion, params["start_version"], project.pk,
                                     "start_version"),
            reward_model=in_project(RewardModel, params.get("reward_model"), project.pk,
                                    "reward_model"),
            reward=params["reward"], config=params["config"], data=params["data"],
            save_every=params["save_every"], created_by=request.user,
        )
        return Response(TuningRunOutput(run).data, status=status.HTTP_201_CREATED)


class TuningRunApi(APIView):
    @extend_schema(responses=TuningRunOutput)
    def get(self, request: Request, run_id: int) -> Response:
        return Response(TuningRunOutput(run_for(request.user, run_id)).data)


class TuningRunCancelApi(APIView):
    @extend_schema(request=None, responses={200: TuningRunOutput,
                                            **conflict("The run has finished already.")})
    def post(self, request: Request, run_id: int) -> Response:
        run = tuning_run_cancel(run=run_for(request.user, run_id))
        return Response(TuningRunOutput(run).data)


class TuningRunRetryApi(APIView):
    @extend_schema(request=None, responses={
        200: TuningRunOutput, **conflict("Only a failed or cancelled run can be retried.")})
    def post(self, request: Request, run_id: int) -> Response:
        run = tuning_run_retry(run=run_for(request.user, run_id))
        return Response(TuningRunOutput(run).data)


class TuningRunMetricsApi(APIView):
    @extend_schema(parameters=[MetricsQuery], responses=MetricsOutput)
    def get(self, request: Request, run_id: int) -> Response:
        run: TuningRun = run_for(request.user, run_id)
        query = MetricsQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        steps = steps_of(run, after=query.validated_data.get("after"), limit=STEPS_PER_PAGE)
        return Response(MetricsOutput({
            "status": run.status, "step": run.step, "total_steps": run.total_steps,
            "steps": steps,
        }).data)


class GenerateInput(serializers.Serializer):
    samples = serializers.IntegerField(default=1, min_value=1, max_value=MAX_SAMPLES,
                                       help_text="Outputs per item.")
    temperature = serializers.FloatField(default=0.0, min_value=0.0,
                                         help_text="0 = greedy decoding.")


class GenerateOutput(serializers.Serializer):
    model_version = serializers.IntegerField()
    items = serializers.IntegerField()
    samples = serializers.IntegerField()
    temperature = serializers.FloatField()


class GenerateCandidatesApi(APIView):
    @extend_schema(request=GenerateInput, responses={202: GenerateOutput})
    def post(self, request: Request, version_id: int) -> Response:
        version = ModelVersion.objects.filter(pk=version_id).first()
        if version is None:
            raise Http404("No such model version.")
        project_for(request.user, version.project_id, roles=ADMINS)
        body = GenerateInput(data=request.data)
        body.is_valid(raise_exception=True)
        items = candidates_generate(model_version=version, **body.validated_data)
        return Response(GenerateOutput({"model_version": version.pk, "items": items,
                                        **body.validated_data}).data,
                        status=status.HTTP_202_ACCEPTED)
