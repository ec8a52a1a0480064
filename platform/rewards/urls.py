"""API routes of reward models (mounted under /api/)."""

from django.urls import path

from rewards import api

urlpatterns = [
    path("projects/<id:project_id>/reward-models/", api.ProjectRewardModelsApi.as_view(),
         name="project-reward-models"),
    path("reward-models/<id:reward_model_id>/", api.RewardModelApi.as_view(),
         name="reward-model"),
]
