"""Tuning runs: REINFORCE from a ModelVersion against a reward, executed by a Celery worker.

A TuningRun holds what was asked (starting version, reward, the trainer's TuneConfig and
DataConfig as JSON), where it stands (status, step of total, the live worker and its last
heartbeat, attempts) and what came out (the new ModelVersion, or the error). TuningStep keeps
the metrics of each logged step; (run, step) is unique, so a run resumed from its checkpoint
overwrites the steps it repeats instead of counting them twice.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from common.jobs import Job
from projects.models import ModelVersion, Project
from rewards.models import RewardModel


class RewardKind(models.TextChoices):
    METRIC = "metric", "The task metric (needs ground truth)"
    LEARNED = "learned", "A learned reward model"


class TuningRun(Job):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tuning_runs")
    start_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="tuning_runs",
        help_text="The model the run starts from (its checkpoint).",
    )
    reward = models.CharField(max_length=10, choices=RewardKind.choices,
                              default=RewardKind.METRIC)
    reward_model = models.ForeignKey(
        RewardModel, null=True, blank=True, on_delete=models.PROTECT, related_name="tuning_runs"
    )
    config = models.JSONField(default=dict, help_text="trainer TuneConfig fields.")
    data_config = models.JSONField(
        default=dict, blank=True,
        help_text='trainer DataConfig fields (Synthetic Shapes by default; "data_dir": a COCO '
                  'folder under the media root), or {"source": "project"}: the project\'s own '
                  "items.",
    )
    save_every = models.PositiveIntegerField(
        default=50, help_text="Steps between checkpoints: the most work a dead worker loses."
    )
    step = models.PositiveIntegerField(default=0, help_text="Steps done.")
    total_steps = models.PositiveIntegerField(default=0)
    # Overrides Job's `attempts` only to keep this help text, which RewardModel's lacks.
    attempts = models.PositiveIntegerField(default=0, help_text="Executions started.")
    samples = models.JSONField(
        default=list, blank=True,
        help_text="Held-out images with the starting and the tuned model's outputs.",
    )
    result_version = models.OneToOneField(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="made_by"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(reward=RewardKind.METRIC, reward_model__isnull=True)
                | Q(reward=RewardKind.LEARNED, reward_model__isnull=False),
                name="tuning_run_reward_model_iff_learned",
            ),
        ]
        indexes = [
            # The reaper looks for running runs with an old heartbeat.
            models.Index(fields=["status", "heartbeat_at"], name="tuning_run_status_idx"),
        ]

    def __str__(self) -> str:
        return f"tuning run {self.pk} of {self.start_version}"


class TuningStep(models.Model):
    """Metrics of one logged step (mean reward, gradient norm, KL, ...), as the trainer gave."""

    run = models.ForeignKey(TuningRun, on_delete=models.CASCADE, related_name="steps")
    step = models.PositiveIntegerField()
    metrics = models.JSONField()
    recorded_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["run", "step"]
        constraints = [
            models.UniqueConstraint(fields=["run", "step"], name="tuning_step_once"),
        ]
