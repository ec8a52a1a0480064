"""The console pages of a project: tuning runs (with the launch form), model versions (with the
next round's form), two versions compared, quality, export, and the navigation bar.

Admins see every page; viewers read the runs and the versions (no form); annotators get 403,
users outside the project 404, anonymous users the login page. The launch form's settings,
help and ranges come from the trainer's TuneConfig; its request gets 400s whose fields each
have a box on the page."""

import json
import re

import pytest
from django.test import Client

from labeling.models import Task
from labeling.services.answers import answer_submit
from labeling.services.leases import next_task_for
from projects.models import ModelVersion, Project, Role
from projects.services import membership_set, model_version_get_or_create
from trainer.configs import TuneConfig, help_for
from tuning.models import TuningRun
from tuning.services import tuning_run_launch

pytestmark = pytest.mark.django_db

PAGES = ("runs/", "versions/", "versions/compare/?before={a}&after={b}", "quality/", "export/")
READ_ONLY = PAGES[:3]
SAMPLE = {"image_url": "/media/scene.png", "width": 32, "height": 24,
          "before": {"objects": [{"bbox": [1, 1, 5, 5], "category_id": 1, "score": 0.4}]},
          "after": {"objects": [{"bbox": [2, 2, 6, 6], "category_id": 2, "score": 0.9}]}}


def client_for(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def page_data(html: str, script_id: str) -> dict:
    return json.loads(html.split(f'id="{script_id}" type="application/json">')[1]
                      .split("</script>")[0])


def ready_version(project: Project, name: str, **columns) -> ModelVersion:
    """A version whose checkpoint a worker has read (its description columns written)."""
    version = model_version_get_or_create(project=project, name=name)
    ModelVersion.objects.filter(pk=version.pk).update(
        checkpoint=f"projects/{project.pk}/checkpoints/{name}.pt", task="detection",
        class_names=["circle", "square"], checkpoint_format="tunelab-checkpoint/1",
        parameters=123456, **columns)
    version.refresh_from_db()
    return version


@pytest.fixture
def viewer(make_user, project):
    user = make_user("viewer")
    membership_set(project=project, user=user, role=Role.VIEWER)
    return user


@pytest.fixture
def tuned(project, sent) -> TuningRun:
    """A run from `mle` that made `mle tuned` (the worker's side written as it leaves it)."""
    mle = ready_version(project, "mle", metrics={"map": 0.41, "eval": {"class": {"map": 0.41}}})
    run = tuning_run_launch(project=project, start_version=mle, config={"steps": 4})
    result = ready_version(project, "mle tuned", parent=mle, metrics={
        "map": 0.55, "eval": {"class": {"map": 0.55}}, "best_decoding": "class",
        "learned_reward": {"before": 0.2, "after": 0.35}, "train_seconds": 3.5})
    TuningRun.objects.filter(pk=run.pk).update(status="succeeded", step=4, result_version=result,
                                               samples=[SAMPLE])
    run.refresh_from_db()
    return run


def urls(project, run: TuningRun, pages=PAGES) -> list[str]:
    return [f"/projects/{project.pk}/" + page.format(a=run.start_version_id,
                                                      b=run.result_version_id)
            for page in pages]


def test_admins_see_every_page_viewers_read_annotators_and_outsiders_do_not(
    project, tuned, project_admin, viewer, annotator, outsider
):
    for page, url in zip(PAGES, urls(project, tuned), strict=True):
        assert client_for(project_admin).get(url).status_code == 200, url
        assert client_for(viewer).get(url).status_code == (200 if page in READ_ONLY else 403), url
        assert client_for(annotator).get(url).status_code == 403, url
        assert client_for(outsider).get(url).status_code == 404, url
        anonymous = client_for(None).get(url)
        assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/")


def test_the_runs_page_lists_runs_and_offers_the_launch_form(project, tuned, project_admin):
    response = client_for(project_admin).get(f"/projects/{project.pk}/runs/")
    html = response.content.decode()
    row = html.split(f'<tr data-run="{tuned.pk}">')[1].split("</tr>")[0]
    assert f'<a href="/tuning/runs/{tuned.pk}/">Run {tuned.pk}</a>' in row
    assert 'data-status="succeeded"' in row and "<td>mle</td>" in row and "4 / 4" in row
    assert "mle tuned" in row and "mAP 0.55" in row and "learned reward 0.2 → 0.35" in row
    # Every TuneConfig setting with its help (which names its range), at its default except
    # log_every, which the form starts at 1 so the run page draws every step.
    helps = help_for(TuneConfig)
    assert "(&gt; 0 and &lt; 1)" in helps["lr"].replace(">", "&gt;").replace("<", "&lt;")
    for name in helps:
        assert f'name="config.{name}"' in html and f'data-error-for="config.{name}"' in html
    assert 'name="config.log_every" type="number" step="any" data-kind="number" value="1"' in html
    assert "AdamW learning rate (constant after warmup) (&gt; 0 and &lt; 1)" in html
    assert '<option selected>loo</option>' in html
    assert page_data(html, "runs-data") == {"project": project.pk,
                                            "defaults": {**TuneConfig().__dict__}}
    versions = html.split('name="start_version"')[1].split("</select>")[0]
    assert ">mle<" in versions and ">mle tuned<" in versions and "model-0" not in versions
    assert "console/launch_run.js" in html and "csrftoken" in response.cookies


def test_a_viewer_reads_the_runs_without_the_form_or_the_run_pages(project, tuned, viewer):
    html = client_for(viewer).get(f"/projects/{project.pk}/runs/").content.decode()
    assert f"Run {tuned.pk}" in html and f"/tuning/runs/{tuned.pk}/" not in html
    assert 'id="launch-form"' not in html and "launch_run.js" not in html


def test_every_field_the_launch_api_refuses_has_a_box_on_the_form(
    project, tuned, project_admin, api_client_for
):
    """What launch_run.js sends: the session, the page's CSRF token, JSON. Each refusal names a
    field whose box the page has (the script puts the messages there)."""
    client = api_client_for(project_admin, session=True)
    page = client.get(f"/projects/{project.pk}/runs/")
    html = page.content.decode()
    headers = {"HTTP_X_CSRFTOKEN": page.cookies["csrftoken"].value}
    url = f"/api/projects/{project.pk}/tuning-runs/"
    bodies = [
        {"start_version": tuned.start_version_id, "config": {"lr": 5, "steps": 0}},
        {"start_version": project.model_versions.get(name="model-0").pk},
        {"start_version": tuned.start_version_id, "reward": "learned"},
        {"start_version": tuned.start_version_id, "data": {"source": "elsewhere"}},
        {"start_version": tuned.start_version_id, "save_every": None},
    ]
    fields = set()
    for body in bodies:
        response = client.post(url, body, format="json", **headers)
        assert response.status_code == 400, response.content
        fields |= response.json()["errors"].keys()
    assert fields >= {"config.lr", "config.steps", "start_version", "reward_model",
                      "data.source", "save_every"}
    for field in fields:
        head = field.split(".")[0]
        assert f'data-error-for="{field}"' in html or f'data-error-for="{head}"' in html, field
    assert TuningRun.objects.count() == 1


def test_the_versions_page_lists_versions_and_offers_the_next_round(project, tuned,
                                                                    project_admin, viewer):
    html = client_for(project_admin).get(f"/projects/{project.pk}/versions/").content.decode()
    result = tuned.result_version
    row = html.split(f'<tr data-version="{result.pk}">')[1].split("</tr>")[0]
    assert f'<a href="/tuning/runs/{tuned.pk}/">{tuned.pk}</a>' in row
    assert "<td>mle</td>" in row and 'data-state="ready">Ready<' in row
    assert "<td>detection</td>" in row and "<td>123456</td>" in row and "mAP 0.55" in row
    assert (f"?before={tuned.start_version_id}&amp;after={result.pk}"
            '">compare with parent</a>') in row
    imported = project.model_versions.get(name="model-0")
    row = html.split(f'<tr data-version="{imported.pk}">')[1].split("</tr>")[0]
    assert 'data-state="none">No checkpoint<' in row and "<td>3</td>" in row  # candidates
    next_round = html.split('id="next-round"')[1].split("</form>")[0]
    assert f'<option value="{result.pk}" selected>mle tuned</option>' in next_round
    assert "model-0" not in next_round and "console/next_round.js" in html

    html = client_for(viewer).get(f"/projects/{project.pk}/versions/").content.decode()
    assert "mle tuned" in html and 'id="next-round"' not in html


def test_the_next_round_forms_request_queues_the_generation(
    project, tuned, project_admin, api_client_for, sent, django_capture_on_commit_callbacks
):
    client = api_client_for(project_admin, session=True)
    page = client.get(f"/projects/{project.pk}/versions/")
    headers = {"HTTP_X_CSRFTOKEN": page.cookies["csrftoken"].value}
    url = f"/api/model-versions/{tuned.result_version_id}/generate-candidates/"
    refused = client.post(url, {"samples": 2, "temperature": 0}, format="json", **headers)
    assert refused.status_code == 400 and "temperature" in refused.json()["errors"]
    assert 'data-error-for="temperature"' in page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        queued = client.post(url, {"samples": 1, "temperature": 0}, format="json", **headers)
    assert queued.status_code == 202 and queued.json()["items"] == 3
    assert sent[-1] == ("tuning.generate_candidates", [tuned.result_version_id, 1, 0.0])


def test_the_compare_page_shows_metrics_before_and_after_and_the_runs_samples(
    project, tuned, viewer
):
    before, after = tuned.start_version_id, tuned.result_version_id
    html = client_for(viewer).get(
        f"/projects/{project.pk}/versions/compare/?before={before}&after={after}").content.decode()
    assert "<h1>mle → mle tuned</h1>" in html
    row = html.split('<tr data-metric="map">')[1].split("</tr>")[0]
    assert row == "<td><code>map</code></td><td>0.41</td><td>0.55</td>\n          <td>+0.1400</td>"
    assert '<tr data-metric="eval.class.map">' in html
    assert '<tr data-metric="learned_reward.after">' in html and "best_decoding" not in html
    data = page_data(html, "compare-data")
    assert data["samples"] == [SAMPLE] and (data["start"], data["result"]) == ("mle", "mle tuned")
    assert len(data["categories"]) == 2 and "console/compare.js" in html

    # Without a run between them: the metrics, no samples.
    other = project.model_versions.get(name="model-0").pk
    html = client_for(viewer).get(
        f"/projects/{project.pk}/versions/compare/?before={other}&after={after}").content.decode()
    assert page_data(html, "compare-data")["samples"] == []
    assert "No tuning run made one of these versions from the other" in html


def test_compare_refuses_versions_of_other_projects_and_bad_ids(project, other_project, tuned,
                                                                project_admin):
    elsewhere = model_version_get_or_create(project=other_project, name="mle")
    client = client_for(project_admin)
    base = f"/projects/{project.pk}/versions/compare/"
    assert client.get(f"{base}?before={elsewhere.pk}&after={tuned.result_version_id}"
                      ).status_code == 404
    assert client.get(f"{base}?before=x&after=1").status_code == 404
    assert client.get(base).status_code == 404


def answer_all(project: Project, users) -> None:
    for user in users:
        while (lease := next_task_for(user=user, project=project)) is not None:
            task = Task.objects.select_related("project").get(pk=lease.task_id)
            answer_submit(user=user, task=task, answer={"choice": "A"},
                          idempotency_key=f"{user.pk}-{task.pk}", time_spent_ms=2000)


def test_the_quality_page_shows_agreement_and_each_annotator(project, project_admin,
                                                             annotator, make_user):
    second = make_user("second")
    membership_set(project=project, user=second, role=Role.ANNOTATOR)
    answer_all(project, [annotator, second])
    html = client_for(project_admin).get(f"/projects/{project.pk}/quality/").content.decode()
    # Both chose A on every task: they agree on every pair.
    assert re.search(r'id="agreement-value">1\.000\s', html)
    assert "<dt>Tasks complete</dt><dd>9 of 9</dd>" in html
    row = html.split('<tr data-annotator="second">')[1].split("</tr>")[0]
    assert "<td>9</td>" in row and "<td>2.0</td>" in row and "<td>1.000</td>" in row
    charts = html.split('class="bar-charts"')[1]
    assert 'aria-label="Answers by annotator"' in charts
    assert charts.count('style="width: 100.0%"') == 6  # equal answers, speed, agreement


def test_the_export_page_makes_links_with_the_filters_and_names_bad_ones(project, project_admin,
                                                                         annotator):
    client = client_for(project_admin)
    base = f"/projects/{project.pk}/export/"
    html = client.get(base).content.decode()
    assert f'href="/api/projects/{project.pk}/export/?format=csv">csv</a>' in html
    assert 'id="export-link"' not in html
    assert "<option>annotator</option>" in html and "<option>model-1</option>" in html

    html = client.get(base, {"format": "jsonl", "annotator": "annotator", "since": "2026-11-01",
                             "until": "", "model_version": ""}).content.decode()
    link = (f"/api/projects/{project.pk}/export/"
            "?format=jsonl&amp;annotator=annotator&amp;since=2026-11-01")
    assert f'<a href="{link}">' in html

    html = client.get(base, {"format": "csv", "since": "last tuesday"}).content.decode()
    assert 'id="export-link"' not in html
    box = html.split('data-error-for="since"')[1].split("</p>")[0]
    assert "hidden" not in box and "Expected an ISO 8601 date" in box


def test_one_navigation_bar_links_the_pages_the_role_opens(project, tuned, project_admin,
                                                           annotator, viewer, make_user):
    html = client_for(project_admin).get(f"/projects/{project.pk}/runs/").content.decode()
    nav = html.split('<nav class="topbar-nav"')[1].split("</nav>")[0]
    for page in ("runs/", "versions/", "quality/", "export/", "annotate/"):
        assert f'href="/projects/{project.pk}/{page}"' in nav
    assert f'href="/rewards/projects/{project.pk}/"' in nav and "Django admin" not in nav
    assert f'href="/projects/{project.pk}/runs/" aria-current="page"' in nav
    # The reward-model pages carry the same bar.
    page = client_for(project_admin).get(f"/rewards/projects/{project.pk}/").content.decode()
    assert f'href="/projects/{project.pk}/versions/"' in page

    nav = client_for(annotator).get(f"/projects/{project.pk}/annotate/").content.decode().split(
        '<nav class="topbar-nav"')[1].split("</nav>")[0]
    assert f'href="/projects/{project.pk}/annotate/"' in nav and "runs/" not in nav
    nav = client_for(viewer).get(f"/projects/{project.pk}/versions/").content.decode().split(
        '<nav class="topbar-nav"')[1].split("</nav>")[0]
    assert "runs/" in nav and "quality/" not in nav and "annotate/" not in nav

    staff = make_user("staff", is_staff=True)
    membership_set(project=project, user=staff, role=Role.ADMIN)
    html = client_for(staff).get(f"/projects/{project.pk}/runs/").content.decode()
    assert '<a href="/admin/">Django admin</a>' in html


def test_the_home_page_links_admins_to_every_page_viewers_to_the_results(project, project_admin,
                                                                         viewer):
    html = client_for(project_admin).get("/").content.decode()
    for page in ("runs/", "versions/", "quality/", "export/"):
        assert f'<a class="btn" href="/projects/{project.pk}/{page}">' in html
    assert f'<a class="btn btn-primary" href="/projects/{project.pk}/annotate/">' in html
    html = client_for(viewer).get("/").content.decode()
    assert f'href="/projects/{project.pk}/runs/"' in html
    assert f"/projects/{project.pk}/quality/" not in html
