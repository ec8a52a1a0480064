"""UI routes: log in and out, pick a project, annotate it."""

from django.contrib.auth import views as auth_views
from django.urls import path

from annotate import views

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.project_picker, name="project-picker"),
    path("projects/<id:project_id>/annotate/", views.annotate_page, name="annotate"),
]
