"""The annotation queue and the answers: tasks, leases (assignments), ratings and comparisons.

A Task is one unit of work shown on one screen: one candidate (scale), two (pairwise) or k
(ranking) outputs of the same item. Each task wants `project.overlap` answers from different
annotators; an Assignment records that one annotator was handed a task (with a lease while
they work on it) and makes it impossible to hand them the same task twice.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from projects.models import Candidate, Item, Project, RatingMode


class Task(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tasks")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="tasks")
    candidates = models.ManyToManyField(Candidate, through="TaskCandidate", related_name="tasks")
    key = models.CharField(
        max_length=255, help_text="The sorted candidate ids: one task per set of candidates."
    )
    answers_needed = models.PositiveSmallIntegerField(default=1)
    answer_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "key"], name="task_unique_candidates"),
        ]
        indexes = [
            # The queue walks a project's tasks that still want answers, in id order.
            models.Index(
                fields=["project", "id"], name="task_open_idx",
                condition=Q(answer_count__lt=models.F("answers_needed")),
            ),
        ]

    def __str__(self) -> str:
        return f"task {self.pk} of {self.project}"


class TaskCandidate(models.Model):
    """A candidate's place on a task's screen (A, B, ... in the order shown)."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="slots")
    candidate = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="slots")
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["task", "position"]
        constraints = [
            models.UniqueConstraint(fields=["task", "position"], name="slot_unique_position"),
            models.UniqueConstraint(fields=["task", "candidate"], name="slot_unique_candidate"),
        ]


class AssignmentStatus(models.TextChoices):
    LEASED = "leased", "Leased"
    ANSWERED = "answered", "Answered"
    SKIPPED = "skipped", "Skipped"


class Assignment(models.Model):
    """One annotator was handed one task: at most once, ever (the unique constraint)."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="assignments")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments"
    )
    status = models.CharField(
        max_length=10, choices=AssignmentStatus.choices, default=AssignmentStatus.LEASED
    )
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["task", "annotator"], name="assignment_once"),
        ]
        indexes = [
            models.Index(fields=["task", "status"], name="assignment_task_status_idx"),
            # An annotator's live leases and progress in a project.
            models.Index(fields=["annotator", "status"], name="assignment_annotator_idx"),
        ]


class AnswerQuerySet(models.QuerySet):
    def own(self) -> "AnswerQuerySet":
        """Answers the project's annotators gave here, without feedback imported from a
        dataset archive (which trains reward models but is no part of the queue's overlap or
        of the annotators' agreement)."""
        return self.filter(imported_annotator="")


class Answer(models.Model):
    """Fields every answer has: who, which task, time spent, when, and its idempotency key.

    An imported answer (from a dataset archive: `ingest.dataset_archive`) keeps the
    annotator's name as the archive gives it in `imported_annotator`; its `annotator` is a user
    made for that name, inactive and no member of the project.
    """

    task = models.ForeignKey(Task, on_delete=models.PROTECT, related_name="%(class)ss")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="%(class)ss"
    )
    idempotency_key = models.CharField(max_length=64)
    time_spent_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # A database default too: the answer's SQL function inserts rows without naming it.
    imported_annotator = models.CharField(
        max_length=150, blank=True, default="", db_default="",
        help_text="Imported feedback: who answered, as the dataset archive names them; blank "
                  "for the project's own annotators' answers.",
    )

    objects = AnswerQuerySet.as_manager()

    class Meta:
        abstract = True


class Rating(Answer):
    """A 1-5 score of one candidate."""

    candidate = models.ForeignKey(Candidate, on_delete=models.PROTECT, related_name="ratings")
    score = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["task", "annotator"], name="rating_once_per_task"),
            models.UniqueConstraint(
                fields=["annotator", "idempotency_key"], name="rating_idempotency"
            ),
            models.CheckConstraint(
                condition=Q(score__gte=1) & Q(score__lte=5), name="rating_score_1_to_5"
            ),
        ]


class Choice(models.TextChoices):
    A = "A", "A"
    B = "B", "B"
    TIE = "tie", "Tie"


class Comparison(Answer):
    """A preference between two candidates (`choice`) or a ranking of k (`ranking`, best first,
    candidate ids)."""

    choice = models.CharField(max_length=3, choices=Choice.choices, null=True, blank=True)
    ranking = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["task", "annotator"], name="comparison_once_per_task"
            ),
            models.UniqueConstraint(
                fields=["annotator", "idempotency_key"], name="comparison_idempotency"
            ),
            models.CheckConstraint(
                condition=Q(choice__isnull=False, ranking__isnull=True)
                | Q(choice__isnull=True, ranking__isnull=False),
                name="comparison_choice_xor_ranking",
            ),
        ]


def answer_model(rating_mode: str) -> type[Rating | Comparison]:
    """The model that stores a project's answers: Rating (scale), else Comparison."""
    return Rating if rating_mode == RatingMode.SCALE else Comparison


class AnswerProgress(models.Model):
    """PostgreSQL: how many tasks an annotator has answered in a project (an Assignment with
    status answered), in all and on `day` (UTC, by the assignment's updated_at), kept by
    triggers on the assignments (migration 0003), so an answer's progress line reads one row
    instead of counting every answer the annotator ever gave. SQLite counts the assignments
    instead and leaves this table empty."""

    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                  related_name="+")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    done = models.IntegerField(default=0)
    day = models.DateField(null=True)
    done_day = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["annotator", "project"], name="progress_once"),
        ]
