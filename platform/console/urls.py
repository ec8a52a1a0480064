"""UI routes of a project's console pages, mounted under /projects/<project_id>/."""

from django.urls import path

from console import views

urlpatterns = [
    path("runs/", views.runs_page, name="project-runs-page"),
    path("versions/", views.versions_page, name="project-versions-page"),
    path("versions/compare/", views.compare_page, name="versions-compare-page"),
    path("quality/", views.quality_page, name="project-quality-page"),
    path("export/", views.export_page, name="project-export-page"),
]
