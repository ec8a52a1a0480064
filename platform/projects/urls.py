"""API routes for projects (mounted under /api/)."""

from django.urls import path

from projects import api

urlpatterns = [
    path("projects/", api.ProjectListApi.as_view(), name="project-list"),
    path("projects/<id:project_id>/", api.ProjectDetailApi.as_view(), name="project-detail"),
    path("projects/<id:project_id>/items/", api.ItemListApi.as_view(), name="project-items"),
    path("projects/<id:project_id>/candidates/", api.CandidateListApi.as_view(),
         name="project-candidates"),
]
