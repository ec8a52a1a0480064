"""A learned reward model of a project: what data it was trained on, how, and how well.

The network itself is a file (`trainer.reward_model`'s format) under MEDIA_ROOT; the row keeps
the snapshot of the feedback it saw (counts at launch), its config, its status and the held-out
pairwise accuracy that says whether it is worth tuning against.
"""

from django.conf import settings
from django.db import models

from common.jobs import Job
from projects.models import ModelVersion, Project


def reward_model_path(reward_model: "RewardModel", filename: str) -> str:
    return f"projects/{reward_model.project_id}/reward_models/{filename}"


class RewardModel(Job):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="reward_models")
    name = models.CharField(max_length=200)
    snapshot = models.JSONField(
        default=dict, blank=True,
        help_text="What the training data was at launch: counts of ratings and comparisons.",
    )
    config = models.JSONField(default=dict, blank=True, help_text="RewardModelConfig fields.")
    policy = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The detection model whose network readout 'policy' starts from (its "
                  "weights are copied into the reward model's file).",
    )
    heldout_accuracy = models.FloatField(
        null=True, blank=True, help_text="Pairwise accuracy on held-out images (0..1)."
    )
    metrics = models.JSONField(default=dict, blank=True)
    file = models.FileField(upload_to=reward_model_path, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="reward_model_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name
