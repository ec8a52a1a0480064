"""Root URLs: the admin, the REST API with its OpenAPI schema, the annotator UI and media;
error views that answer JSON under /api/ (common.error_views)."""

from django.conf import settings
from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include, path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerView,
)
from rest_framework.authtoken.views import obtain_auth_token

from common.media import media_file

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema",
                                                    template_name="common/redoc.html"),
         name="api-redoc"),
    path("api/auth/token/", obtain_auth_token, name="auth-token"),
    # The annotation queue first: its next-task and answer are most of the API's requests.
    path("api/", include("labeling.urls")),
    path("api/", include("projects.urls")),
    path("api/", include("exports.urls")),
    path("api/", include("ingest.urls")),
    path("api/", include("rewards.urls")),
    path("api/", include("tuning.urls")),
    path("tuning/", include("tuning.page_urls")),
    path("rewards/", include("rewards.page_urls")),
    path("projects/<id:project_id>/", include("console.urls")),
    # Media only through the view that checks who asks, in development as behind nginx.
    path(f"{settings.MEDIA_URL.strip('/')}/<path:name>", media_file, name="media"),
    path("", include("annotate.urls")),
    # The platform's apps add their `path("api/...", include(...))` and UI routes here.
]

# Static files from the apps' folders under DEBUG (`make run`'s gunicorn); nginx serves the
# collected ones in a deployment, and this adds nothing outside DEBUG.
urlpatterns += staticfiles_urlpatterns()

handler400 = "common.error_views.bad_request"
handler403 = "common.error_views.permission_denied"
handler404 = "common.error_views.page_not_found"
handler500 = "common.error_views.server_error"
