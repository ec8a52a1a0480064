"""Django admin for reward models: launch training (through the same checks as the API) and
read the results. Rows are read-only once they exist: only the services change them."""

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from common.admin_labels import ProjectLabelledChoices
from common.errors import ApplicationError
from rewards.models import RewardModel
from rewards.services import reward_model_check, reward_model_launch

LAUNCH_FIELDS = ["project", "name", "config", "policy"]


class RewardModelLaunchForm(forms.ModelForm):
    class Meta:
        model = RewardModel
        fields = LAUNCH_FIELDS

    def clean(self) -> dict:
        data = super().clean()
        if not self.errors:
            try:
                reward_model_check(project=data["project"], config=data.get("config") or {},
                                   name=data.get("name") or "", policy=data.get("policy"))
            except ApplicationError as error:
                raise forms.ValidationError(error.message) from None
        return data


@admin.register(RewardModel)
class RewardModelAdmin(ProjectLabelledChoices):
    list_display = ["name", "project", "status", "heldout_accuracy", "snapshot", "created_at"]
    list_filter = ["status", "project"]

    def get_form(self, request: HttpRequest, obj: RewardModel | None = None, **kwargs):
        if obj is None:
            kwargs["form"] = RewardModelLaunchForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request: HttpRequest, obj: RewardModel | None = None) -> list[str]:
        return LAUNCH_FIELDS if obj is None else [f.name for f in RewardModel._meta.fields]

    def get_readonly_fields(self, request: HttpRequest, obj: RewardModel | None = None):
        return [] if obj is None else [f.name for f in RewardModel._meta.fields]

    def save_model(self, request: HttpRequest, obj: RewardModel, form, change: bool) -> None:
        if change:
            return  # read-only: nothing to save
        data = form.cleaned_data
        launched = reward_model_launch(
            project=data["project"], name=data.get("name") or "",
            config=data.get("config") or {}, policy=data.get("policy"),
            created_by=request.user,
        )
        obj.pk = launched.pk  # the admin redirects to the launched model
