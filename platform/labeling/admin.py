"""Django admin for the queue and the answers: tasks with their candidates, assignments
(leases), ratings and comparisons, filterable by project, annotator and state."""

from django.contrib import admin

from labeling.models import Assignment, Comparison, Rating, Task, TaskCandidate


class TaskCandidateInline(admin.TabularInline):
    model = TaskCandidate
    extra = 0
    raw_id_fields = ["candidate"]


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "item", "key", "answer_count", "answers_needed",
                    "created_at"]
    list_filter = ["project"]
    search_fields = ["item__file_name", "key"]
    raw_id_fields = ["item"]
    inlines = [TaskCandidateInline]
    list_select_related = ["project", "item"]


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "annotator", "status", "lease_expires_at", "updated_at"]
    list_filter = ["status", "task__project"]
    search_fields = ["annotator__username"]
    raw_id_fields = ["task"]
    list_select_related = ["task__project", "annotator"]


class AnswerAdmin(admin.ModelAdmin):
    list_filter = ["task__project", "annotator", "created_at"]
    search_fields = ["annotator__username", "idempotency_key"]
    raw_id_fields = ["task"]
    date_hierarchy = "created_at"
    readonly_fields = ["created_at"]


@admin.register(Rating)
class RatingAdmin(AnswerAdmin):
    list_display = ["id", "task", "candidate", "annotator", "score", "time_spent_ms",
                    "created_at"]
    raw_id_fields = ["task", "candidate"]
    list_select_related = ["task__project", "annotator", "candidate"]


@admin.register(Comparison)
class ComparisonAdmin(AnswerAdmin):
    list_display = ["id", "task", "annotator", "choice", "ranking", "time_spent_ms",
                    "created_at"]
    list_select_related = ["task__project", "annotator"]
