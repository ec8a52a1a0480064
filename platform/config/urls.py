"""Root URLs: the admin, the REST API with its OpenAPI schema, and the annotator UI; error
views that answer JSON under /api/ (common.error_views)."""

from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerView,
)
from rest_framework.authtoken.views import obtain_auth_token

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
    path("", include("annotate.urls")),
    # The platform's apps add their `path("api/...", include(...))` and UI routes here.
]

handler400 = "common.error_views.bad_request"
handler403 = "common.error_views.permission_denied"
handler404 = "common.error_views.page_not_found"
handler500 = "common.error_views.server_error"

if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
