"""UI routes of tuning runs: the run page."""

from django.urls import path

from tuning import views

urlpatterns = [
    path("runs/<id:run_id>/", views.run_page, name="tuning-run-page"),
]
