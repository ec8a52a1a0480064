"""Media files through the view that checks who asks: the URLs the app hands out work for those
who may see them, in development (the file itself) and behind nginx (X-Accel-Redirect), and no
spelling of a path reaches another project's files. Who may read each kind of file is in
test_permissions.py."""

import importlib
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import clear_url_caches

from common.media import ACCEL_PREFIX

pytestmark = pytest.mark.django_db


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def _image(project) -> tuple[str, bytes]:
    item = project.items.order_by("id").first()
    return item.image.url, Path(item.image.path).read_bytes()


@pytest.fixture
def debug_urls(settings):
    """The URL conf as `make run` loads it: DEBUG on when config.urls is imported."""
    import config.urls

    settings.DEBUG = True
    clear_url_caches()
    importlib.reload(config.urls)
    yield
    settings.DEBUG = False
    clear_url_caches()
    importlib.reload(config.urls)


def test_under_debug_media_still_needs_a_member_and_static_files_are_served(
        debug_urls, client, annotator, project):
    url, data = _image(project)
    refused = client.get(url)
    assert refused.status_code == 302 and data not in _body(refused)
    client.force_login(annotator)
    assert _body(client.get(url)) == data
    static = client.get(f"{settings.STATIC_URL}css/tunelab.css")
    assert static.status_code == 200 and b"{" in _body(static)


def test_the_urls_the_api_hands_out_open_for_the_annotator(client, annotator, project):
    client.force_login(annotator)
    task = client.get(f"/api/projects/{project.pk}/next-task/").json()
    item = project.items.get(pk=task["item"]["id"])
    response = client.get(task["item"]["image_url"])
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert _body(response) == Path(item.image.path).read_bytes()
    listed = client.get(f"/api/projects/{project.pk}/items/").json()["results"][0]
    assert client.get(listed["image_url"]).status_code == 200


def test_a_member_cannot_walk_into_another_project(client, annotator, project, other_project):
    client.force_login(annotator)
    own = project.items.first().image.name
    theirs = other_project.items.first().image.name
    assert (Path(settings.MEDIA_ROOT) / theirs).is_file()
    prefix = "/".join(own.split("/")[:3])  # projects/<id>/items
    for path in (f"{prefix}/../../{theirs.split('/', 1)[1]}",
                 f"{prefix}/%2e%2e/%2e%2e/{theirs.split('/', 1)[1]}",
                 f"{prefix}//../../../{theirs}", f"{prefix}/..\\..\\{theirs}"):
        response = client.get(f"{settings.MEDIA_URL}{path}")
        assert response.status_code == 404, path


def test_names_outside_every_project_are_not_served_even_to_a_superuser(
        client, make_user, project):
    client.force_login(make_user("root", is_superuser=True, is_staff=True))
    for name in ("colorized/1.png", f"projects/{project.pk}/elsewhere/1.png", "tunelab.sqlite3",
                 "tuning/runs/999/checkpoint.pt"):
        default_storage.save(name, ContentFile(b"secret"))
        assert client.get(default_storage.url(name)).status_code == 404, name
    url, data = _image(project)  # the Django admin's thumbnails: every project's images
    assert _body(client.get(url)) == data


def test_a_missing_file_a_write_and_a_bad_token_get_nothing(client, api_client_for,
                                                            project_admin, project):
    url, data = _image(project)
    forged = client.get(url, HTTP_AUTHORIZATION="Token not-a-token")
    assert forged.status_code == 302 and data not in _body(forged)
    token_client = api_client_for(project_admin)
    assert _body(token_client.get(url)) == data
    assert token_client.post(url).status_code == 405
    assert token_client.get(f"{url[:-4]}-gone.png").status_code == 404


def test_behind_nginx_the_view_hands_the_file_over_with_x_accel_redirect(
        settings, client, project_admin, project):
    settings.TUNELAB_MEDIA_ACCEL = True
    client.force_login(project_admin)
    name = default_storage.save(f"projects/{project.pk}/outputs/1/a b.png", ContentFile(b"png"))
    response = client.get(default_storage.url(name))
    assert response.status_code == 200 and response.content == b""
    expected = f"{ACCEL_PREFIX}projects/{project.pk}/outputs/1/a%20b.png"
    assert response["X-Accel-Redirect"] == expected
    assert response["Content-Type"] == "image/png"
    assert "private" in response["Cache-Control"]
    client.logout()
    assert "X-Accel-Redirect" not in client.get(default_storage.url(name))
