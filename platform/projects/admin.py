"""Django admin for projects: members inline, items, model versions and candidates, so an admin
can run a project without the API."""

from django.contrib import admin
from django.utils.html import format_html

from common.admin_labels import ProjectLabelledChoices
from projects.models import Candidate, Item, Membership, ModelVersion, Project
from projects.services import model_version_checkpoint_changed


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "task", "rating_mode", "overlap", "created_at"]
    list_filter = ["task", "rating_mode"]
    search_fields = ["name"]
    inlines = [MembershipInline]
    readonly_fields = ["created_at", "created_by"]

    def save_model(self, request, obj: Project, form, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "project", "role", "created_at"]
    list_filter = ["role", "project"]
    search_fields = ["user__username", "project__name"]
    autocomplete_fields = ["user", "project"]


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["file_name", "project", "thumbnail", "width", "height", "created_at"]
    list_filter = ["project"]
    search_fields = ["file_name"]
    readonly_fields = ["width", "height", "created_at", "thumbnail"]

    @admin.display(description="image")
    def thumbnail(self, item: Item) -> str:
        if not item.image:
            return "-"
        return format_html('<img src="{}" style="max-height: 48px">', item.image.url)


@admin.register(ModelVersion)
class ModelVersionAdmin(ProjectLabelledChoices):
    list_display = ["name", "project", "parent", "task", "checkpoint_state", "created_at"]
    list_filter = ["project"]
    search_fields = ["name", "description"]
    # A worker reads an uploaded checkpoint and writes these (no request opens the file).
    readonly_fields = ["task", "class_names", "checkpoint_format", "parameters",
                       "checkpoint_error", "checkpoint_state"]

    def save_model(self, request, obj: ModelVersion, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if "checkpoint" in form.changed_data:
            model_version_checkpoint_changed(version=obj)


@admin.register(Candidate)
class CandidateAdmin(ProjectLabelledChoices):
    list_display = ["id", "item", "model_version", "sample_index", "created_at"]
    list_filter = ["model_version__project", "model_version"]
    search_fields = ["item__file_name", "model_version__name"]
    raw_id_fields = ["item"]
    list_select_related = ["item", "model_version"]
