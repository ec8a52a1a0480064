"""The annotator UI's server-rendered pages: login required, only member projects listed, the
annotate page carries what its JavaScript needs (project settings, a CSRF cookie)."""

import json
import re

import pytest
from django.test import Client

from projects.models import Role
from projects.services import membership_set

pytestmark = pytest.mark.django_db
PASSWORD = "a-long-enough-password"


def logged_in(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def page_project_data(html: str) -> dict:
    match = re.search(r'<script id="project-data" type="application/json">(.*?)</script>', html)
    assert match, "the annotate page hands its project to the JavaScript"
    return json.loads(match.group(1))


@pytest.mark.parametrize("url", ["/", "/projects/1/annotate/"])
def test_pages_send_anonymous_users_to_login(url):
    response = Client().get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(f"/login/?next={url}")


def test_login_form_logs_in_with_csrf_and_goes_to_the_projects(make_user):
    make_user("maria", password=PASSWORD)
    client = Client(enforce_csrf_checks=True)
    page = client.get("/login/")
    assert page.status_code == 200
    token = page.cookies["csrftoken"].value
    assert 'name="csrfmiddlewaretoken"' in page.content.decode()

    without_token = client.post("/login/", {"username": "maria", "password": PASSWORD})
    assert without_token.status_code == 403

    response = client.post(
        "/login/",
        {"username": "maria", "password": PASSWORD, "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_login_with_a_wrong_password_says_so(make_user):
    make_user("maria", password=PASSWORD)
    response = Client().post("/login/", {"username": "maria", "password": "wrong"})
    assert response.status_code == 200
    assert '<p class="form-error" role="alert">' in response.content.decode()


def test_picker_lists_only_the_users_projects(annotator, project, other_project):
    html = logged_in(annotator).get("/").content.decode()
    assert project.name in html
    assert f'href="/projects/{project.id}/annotate/"' in html
    assert other_project.name not in html


def test_picker_offers_no_annotate_link_to_a_viewer(make_user, make_project):
    viewer = make_user()
    watched = make_project(viewers=[viewer], name="watched")
    html = logged_in(viewer).get("/").content.decode()
    assert "watched" in html
    assert f"/projects/{watched.id}/annotate/" not in html


def test_annotate_page_carries_the_project_and_a_csrf_cookie(annotator, project):
    response = logged_in(annotator).get(f"/projects/{project.id}/annotate/")
    assert response.status_code == 200
    html = response.content.decode()
    data = page_project_data(html)
    assert data["id"] == project.id
    assert data["task"] == "detection"
    assert data["rating_mode"] == "pairwise"
    assert data["categories"] == project.categories
    # The page's fetch() calls send this cookie back as X-CSRFToken.
    assert response.cookies["csrftoken"].value
    assert 'name="csrfmiddlewaretoken"' in html
    assert project.instructions in html
    assert 'type="module"' in html


def test_annotate_page_is_404_for_non_members_and_403_for_viewers(
    outsider, project, make_user, make_project
):
    assert logged_in(outsider).get(f"/projects/{project.id}/annotate/").status_code == 404
    viewer = make_user()
    watched = make_project(viewers=[viewer])
    assert logged_in(viewer).get(f"/projects/{watched.id}/annotate/").status_code == 403


def test_logout_is_a_post_with_csrf(annotator):
    client = logged_in(annotator)
    token = client.get("/").cookies["csrftoken"].value
    response = client.post("/logout/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_picker_shows_each_projects_progress_to_its_annotators(api_client_for, annotator,
                                                               project, make_user):
    client = api_client_for(annotator)
    task = client.get(f"/api/projects/{project.pk}/next-task/").json()
    body = {"answer": {"choice": "A"}, "idempotency_key": "picker"}
    assert client.post(f"/api/tasks/{task['id']}/answer/", body, format="json").status_code == 201
    html = logged_in(annotator).get("/").content.decode()
    assert "You answered 1 of 9 tasks · 1 today" in html
    assert '<progress value="1" max="9"' in html
    # A viewer answers nothing: no progress of theirs to show.
    viewer = make_user()
    membership_set(project=project, user=viewer, role=Role.VIEWER)
    html = logged_in(viewer).get("/").content.decode()
    assert project.name in html and "You answered" not in html
