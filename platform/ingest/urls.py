"""URLs of the ingest app, included under /api/."""

from django.urls import path

from ingest.apis import ImportApi

urlpatterns = [
    path("projects/<id:project_id>/import/", ImportApi.as_view(), name="project-import"),
]
