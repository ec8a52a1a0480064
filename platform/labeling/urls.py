"""API routes of the annotation queue (mounted under /api/)."""

from django.urls import path

from labeling import api, views

urlpatterns = [
    path("projects/<id:project_id>/next-task/", views.next_task, name="next-task"),
    path("projects/<id:project_id>/undo/", api.UndoApi.as_view(), name="answer-undo"),
    path("projects/<id:project_id>/quality/", api.QualityApi.as_view(), name="quality"),
    path("tasks/<id:task_id>/answer/", views.answer, name="task-answer"),
    path("tasks/<id:task_id>/skip/", api.SkipApi.as_view(), name="task-skip"),
]
