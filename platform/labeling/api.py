"""REST endpoints of the annotation queue: next task, answer, skip, undo, and quality.

Each view validates its input with a serializer, calls one service or selector, and serializes
the result; the rules live in labeling.services. Next task and answer, an annotator's every
step, are served by the plain views of labeling.views (same contracts, a fraction of the CPU);
their classes here document them in the OpenAPI schema, and their serializers (AnswerInput:
labeling.answer_input, with the rest of an answer's rules) check the input those views do not
take as plain.
"""

from dataclasses import asdict

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.integers import IdField
from common.permissions import ADMINS, ANNOTATORS, project_for
from common.schema import conflict, error_response
from labeling.answer_input import AnswerInput
from labeling.quality import project_quality
from labeling.selectors import task_for, task_screen
from labeling.services.skip_and_undo import last_step_undo, task_skip
from projects.models import RatingMode

# --- Serializers ----------------------------------------------------------------------------


class ScreenItemOutput(serializers.Serializer):
    id = serializers.IntegerField()
    image_url = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()


class ShownCandidateOutput(serializers.Serializer):
    id = serializers.IntegerField()
    label = serializers.CharField(help_text="A, B, ... in screen order.")
    output = serializers.JSONField()


class ProgressOutput(serializers.Serializer):
    done_today = serializers.IntegerField()
    done = serializers.IntegerField()
    total = serializers.IntegerField(help_text="Tasks in the project.")


class TaskOutput(serializers.Serializer):
    id = serializers.IntegerField()
    lease_expires_at = serializers.DateTimeField(allow_null=True)
    rating_mode = serializers.ChoiceField(choices=RatingMode.choices)
    item = ScreenItemOutput()
    candidates = ShownCandidateOutput(many=True)
    progress = ProgressOutput()


class NextTaskInput(serializers.Serializer):
    after = IdField(required=False, help_text="A task the caller already shows: lease another.")


class AnswerOutput(serializers.Serializer):
    id = serializers.IntegerField()
    task = serializers.IntegerField(source="task_id")
    answer = serializers.DictField(
        read_only=True,
        help_text='{"score": 1..5, "candidate": id}, {"choice": "A" | "B" | "tie"} or '
                  '{"ranking": [ids]}.'
    )
    idempotency_key = serializers.CharField()
    time_spent_ms = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class AnswerWithNextOutput(AnswerOutput):
    next_task = TaskOutput(
        allow_null=True,
        help_text="The caller's next task, leased as next-task would (not `after`); null when "
                  "the queue is empty for them.",
    )


class UndoOutput(TaskOutput):
    undone = serializers.ChoiceField(
        choices=["answer", "skip"],
        help_text="The step taken back: an answer withdrawn, or a skip; the task is its task.",
    )


class SkipOutput(serializers.Serializer):
    task = serializers.IntegerField()
    status = serializers.CharField()


class AnnotatorQualityOutput(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    answers = serializers.IntegerField()
    median_seconds = serializers.FloatField(allow_null=True)
    agreement_with_others = serializers.FloatField(
        allow_null=True, help_text="Share of comparisons with other annotators that agree."
    )
    compared = serializers.IntegerField(help_text="Comparisons with other annotators.")


class QualityOutput(serializers.Serializer):
    rating_mode = serializers.ChoiceField(choices=RatingMode.choices)
    metric = serializers.CharField(
        help_text="krippendorff_alpha_ordinal (scale) or pairwise_agreement_rate."
    )
    agreement = serializers.FloatField(allow_null=True, help_text="null when undefined.")
    alpha_interval = serializers.FloatField(allow_null=True, help_text="Scale only.")
    pairable_tasks = serializers.IntegerField(help_text="Tasks with two answers or more.")
    answers = serializers.IntegerField()
    tasks = serializers.IntegerField()
    tasks_complete = serializers.IntegerField()
    annotators = AnnotatorQualityOutput(many=True)


# --- Views ----------------------------------------------------------------------------------


class NextTaskApi(APIView):
    """Documents GET next-task; labeling.views.next_task serves it."""

    @extend_schema(
        parameters=[NextTaskInput],
        responses={200: TaskOutput, 204: OpenApiResponse(description="No task left for you.")},
        summary="Lease the caller's next task",
    )
    def get(self, request: Request, project_id: int) -> Response:
        raise NotImplementedError("served by labeling.views.next_task")


class AnswerApi(APIView):
    """Documents POST answer; labeling.views.answer serves it."""

    @extend_schema(
        request=AnswerInput,
        parameters=[NextTaskInput],
        responses={201: AnswerWithNextOutput, 200: AnswerWithNextOutput,
                   **conflict("The task is not leased to you, or the key is another task's.")},
        summary="Answer a leased task and get the next one (the same idempotency key again "
                "returns the first answer)",
    )
    def post(self, request: Request, task_id: int) -> Response:
        raise NotImplementedError("served by labeling.views.answer")


class SkipApi(APIView):
    @extend_schema(request=None, summary="Skip a task",
                   responses={200: SkipOutput, **conflict("You answered this task.")})
    def post(self, request: Request, task_id: int) -> Response:
        task = task_for(request.user, task_id, roles=ANNOTATORS)
        task_skip(user=request.user, task=task)
        return Response(SkipOutput({"task": task.pk, "status": "skipped"}).data)


class UndoApi(APIView):
    @extend_schema(
        request=None,
        responses={
            200: UndoOutput,
            404: error_response("Nothing to undo, or no such project visible to you."),
            **conflict("The skipped task has had all its answers since."),
        },
        summary="Undo the caller's last answer or skip in the project and lease its task again",
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = project_for(request.user, project_id, roles=ANNOTATORS)
        undone = last_step_undo(user=request.user, project=project)
        screen = task_screen(assignment=undone.assignment, user=request.user, project=project)
        return Response(UndoOutput({**asdict(screen), "undone": undone.step}).data)


class QualityApi(APIView):
    @extend_schema(responses=QualityOutput, summary="Agreement and per-annotator figures")
    def get(self, request: Request, project_id: int) -> Response:
        project = project_for(request.user, project_id, roles=ADMINS)
        return Response(QualityOutput(project_quality(project=project)).data)
