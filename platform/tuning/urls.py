"""API routes of tuning runs (mounted under /api/)."""

from django.urls import path

from tuning import api

urlpatterns = [
    path("projects/<int:project_id>/tuning-runs/", api.ProjectTuningRunsApi.as_view(),
         name="project-tuning-runs"),
    path("tuning-runs/<int:run_id>/", api.TuningRunApi.as_view(), name="tuning-run"),
    path("tuning-runs/<int:run_id>/cancel/", api.TuningRunCancelApi.as_view(),
         name="tuning-run-cancel"),
    path("tuning-runs/<int:run_id>/retry/", api.TuningRunRetryApi.as_view(),
         name="tuning-run-retry"),
    path("tuning-runs/<int:run_id>/metrics/", api.TuningRunMetricsApi.as_view(),
         name="tuning-run-metrics"),
    path("model-versions/<int:version_id>/generate-candidates/",
         api.GenerateCandidatesApi.as_view(), name="generate-candidates"),
]
