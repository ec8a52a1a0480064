"""API routes of tuning runs (mounted under /api/)."""

from django.urls import path

from tuning import api

urlpatterns = [
    path("projects/<id:project_id>/tuning-runs/", api.ProjectTuningRunsApi.as_view(),
         name="project-tuning-runs"),
    path("tuning-runs/<id:run_id>/", api.TuningRunApi.as_view(), name="tuning-run"),
    path("tuning-runs/<id:run_id>/cancel/", api.TuningRunCancelApi.as_view(),
         name="tuning-run-cancel"),
    path("tuning-runs/<id:run_id>/retry/", api.TuningRunRetryApi.as_view(),
         name="tuning-run-retry"),
    path("tuning-runs/<id:run_id>/metrics/", api.TuningRunMetricsApi.as_view(),
         name="tuning-run-metrics"),
    path("model-versions/<id:version_id>/generate-candidates/",
         api.GenerateCandidatesApi.as_view(), name="generate-candidates"),
]
