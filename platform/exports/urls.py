"""URLs of the exports app, included under /api/."""

from django.urls import path

from exports.api import ExportApi

urlpatterns = [
    path("projects/<id:project_id>/export/", ExportApi.as_view(), name="project-export"),
]
