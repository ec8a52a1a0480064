"""UI routes of reward models: a project's list with the launch form, and one reward model."""

from django.urls import path

from rewards import views

urlpatterns = [
    path("projects/<id:project_id>/", views.project_reward_models_page,
         name="project-reward-models-page"),
    path("<id:reward_model_id>/", views.reward_model_page, name="reward-model-page"),
]
