"""Django admin for tuning runs: launch (through the same checks as the API), watch, cancel,
retry. A run's fields are read-only once it exists: only the services change it."""

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from common.admin_labels import ProjectLabelledChoices
from common.errors import ApplicationError
from tuning.models import TuningRun, TuningStep
from tuning.services import (
    tuning_run_cancel,
    tuning_run_check,
    tuning_run_launch,
    tuning_run_retry,
)

LAUNCH_FIELDS = ["project", "start_version", "reward", "reward_model", "config", "data_config",
                 "save_every"]


class TuningRunLaunchForm(forms.ModelForm):
    class Meta:
        model = TuningRun
        fields = LAUNCH_FIELDS

    def clean(self) -> dict:
        data = super().clean()
        if self.errors:
            return data
        try:
            tuning_run_check(
                project=data["project"], start_version=data["start_version"],
                config=data.get("config") or {}, data=data.get("data_config") or {},
                reward=data["reward"], reward_model=data.get("reward_model"),
                save_every=data["save_every"],
            )
        except ApplicationError as error:
            raise forms.ValidationError(error.message) from None
        return data


class TuningStepInline(admin.TabularInline):
    model = TuningStep
    fields = ["step", "metrics", "recorded_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    max_num = 0


@admin.register(TuningRun)
class TuningRunAdmin(ProjectLabelledChoices):
    list_display = ["id", "project", "start_version", "reward", "status", "step", "total_steps",
                    "worker", "heartbeat_at", "attempts", "result_version"]
    list_filter = ["status", "reward", "project"]
    actions = ["cancel_runs", "retry_runs"]
    inlines = [TuningStepInline]

    def get_form(self, request: HttpRequest, obj: TuningRun | None = None, **kwargs):
        if obj is None:
            kwargs["form"] = TuningRunLaunchForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request: HttpRequest, obj: TuningRun | None = None) -> list[str]:
        return LAUNCH_FIELDS if obj is None else [f.name for f in TuningRun._meta.fields]

    def get_readonly_fields(self, request: HttpRequest, obj: TuningRun | None = None):
        return [] if obj is None else [f.name for f in TuningRun._meta.fields]

    def save_model(self, request: HttpRequest, obj: TuningRun, form, change: bool) -> None:
        if change:
            return  # read-only: nothing to save
        data = form.cleaned_data
        launched = tuning_run_launch(
            project=data["project"], start_version=data["start_version"],
            config=data.get("config") or {}, data=data.get("data_config") or {},
            reward=data["reward"], reward_model=data.get("reward_model"),
            save_every=data["save_every"], created_by=request.user,
        )
        obj.pk = launched.pk  # the admin redirects to the launched run

    @admin.action(description="Cancel the selected runs")
    def cancel_runs(self, request: HttpRequest, queryset: QuerySet[TuningRun]) -> None:
        self._each(request, queryset, tuning_run_cancel, "cancelled")

    @admin.action(description="Retry the selected runs (resume from their checkpoint)")
    def retry_runs(self, request: HttpRequest, queryset: QuerySet[TuningRun]) -> None:
        self._each(request, queryset, tuning_run_retry, "queued again")

    def _each(self, request: HttpRequest, queryset, service, done: str) -> None:
        for run in queryset:
            try:
                service(run=run)
                self.message_user(request, f"Run {run.pk} {done}.")
            except ApplicationError as error:
                self.message_user(request, f"Run {run.pk}: {error.message}", messages.WARNING)
