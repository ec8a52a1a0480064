"""What gets rated: projects and their members, items (images), model versions and candidates
(one model output for one item), and the demo's background training of a starting model."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from common.jobs import Job


class VisionTask(models.TextChoices):
    """The vision task whose outputs a project rates (the paper's four)."""

    DETECTION = "detection", "Object detection"
    PANOPTIC = "panoptic", "Panoptic segmentation"
    COLORIZATION = "colorization", "Colorization"
    CAPTIONING = "captioning", "Captioning"


class RatingMode(models.TextChoices):
    SCALE = "scale", "1-5 scale"
    PAIRWISE = "pairwise", "A vs B preference (with tie)"
    RANKING = "ranking", "Ranking of k outputs"


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    ANNOTATOR = "annotator", "Annotator"
    VIEWER = "viewer", "Viewer"


class Project(models.Model):
    name = models.CharField(max_length=200, unique=True)
    task = models.CharField(max_length=20, choices=VisionTask.choices)
    rating_mode = models.CharField(max_length=20, choices=RatingMode.choices)
    ranking_k = models.PositiveSmallIntegerField(
        default=3, help_text="How many outputs a ranking task shows (ranking mode only)."
    )
    overlap = models.PositiveSmallIntegerField(
        default=1, help_text="How many different annotators answer each task."
    )
    instructions = models.TextField(blank=True)
    categories = models.JSONField(
        default=list, blank=True, help_text='COCO categories: [{"id": 1, "name": "circle"}].'
    )
    serve_newest_first = models.BooleanField(
        default=True,
        help_text="Annotators get the newest candidates' tasks first (the next round's before "
                  "what is left of earlier ones); off: oldest first.",
    )
    licence = models.CharField(
        max_length=200, blank=True,
        help_text="The licence the project's data is shared under (e.g. CC-BY-4.0); the "
                  "dataset card of its exports states it.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="projects"
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(overlap__gte=1), name="project_overlap_min_1"),
            models.CheckConstraint(condition=Q(ranking_k__gte=2), name="project_ranking_k_min_2"),
        ]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} is {self.role} of {self.project}"


def item_image_path(item: "Item", filename: str) -> str:
    return f"projects/{item.project_id}/items/{filename}"


class Item(models.Model):
    """One image to be rated, with its optional ground truth in the task's COCO-style form."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="items")
    file_name = models.CharField(max_length=255, help_text="Name in the imported set; unique.")
    image = models.ImageField(upload_to=item_image_path, width_field="width",
                              height_field="height")
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    ground_truth = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "file_name"], name="item_unique_name"),
        ]

    def __str__(self) -> str:
        return self.file_name


def checkpoint_path(version: "ModelVersion", filename: str) -> str:
    return f"projects/{version.project_id}/checkpoints/{filename}"


class CheckpointState(models.TextChoices):
    """Whether a version's checkpoint can be trained or decoded (derived from its columns)."""

    NONE = "none", "No checkpoint"
    PENDING = "pending", "Not read by a worker yet"
    READY = "ready", "Ready"
    INVALID = "invalid", "Unusable"


class ModelVersion(models.Model):
    """Where candidates came from: an imported model's outputs or a Tunelab checkpoint.

    A checkpoint is described in columns when the version gets it (a worker reads the file
    once: `training.checkpoints`), so launch checks read rows and no request opens the file.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="model_versions")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    checkpoint = models.FileField(upload_to=checkpoint_path, blank=True)
    task = models.CharField(max_length=20, choices=VisionTask.choices, blank=True,
                            help_text="The task of the checkpoint's model (read by a worker).")
    class_names = models.JSONField(default=list, blank=True,
                                   help_text="The classes the checkpoint's model names.")
    checkpoint_format = models.CharField(max_length=64, blank=True,
                                         help_text="The checkpoint file's format and version.")
    parameters = models.PositiveBigIntegerField(null=True, blank=True,
                                                help_text="The model's parameter count.")
    input_size = models.PositiveIntegerField(
        null=True, blank=True, help_text="The side of the model's square input in pixels.")
    checkpoint_error = models.TextField(blank=True,
                                        help_text="Why a worker could not use the checkpoint.")
    metrics = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="model_version_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def checkpoint_state(self) -> str:
        if not self.checkpoint:
            return CheckpointState.NONE
        if self.checkpoint_error:
            return CheckpointState.INVALID
        return CheckpointState.READY if self.checkpoint_format else CheckpointState.PENDING


class Candidate(models.Model):
    """One model output for one item (see docs/api.md for `output` by task)."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="candidates")
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="candidates"
    )
    sample_index = models.PositiveIntegerField(
        default=0, help_text="Several samples of one model for one item are numbered."
    )
    output = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["item", "model_version", "sample_index"], name="candidate_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model_version} on {self.item} #{self.sample_index}"


class DemoModelTraining(Job):
    """The demo's starting model of a project: MLE-trained by a worker within a budget, saved
    as a ModelVersion of the project, whose samples then become candidates to rate."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE,
                                   related_name="demo_training")
    max_seconds = models.FloatField(help_text="Wall-time budget of the training (0 = none).")
    max_steps = models.PositiveIntegerField(help_text="Most optimiser steps of the training.")
    seconds_used = models.FloatField(default=0.0, help_text="Training time spent so far.")
    steps_done = models.PositiveIntegerField(default=0)
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The trained model, once saved; its samples are the next candidates.",
    )
    candidates_created = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"demo model of {self.project}"
