"""In the Django admin, a choice of a model version, a reward model or any row of a project
names the project beside the row: projects often have versions of the same name ("mle"), and a
staff member picking the start of a tuning run must tell them apart."""

import re

import pytest

from projects.models import ModelVersion
from projects.services import model_version_get_or_create
from rewards.models import RewardModel

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client, make_user):
    client.force_login(make_user("staff", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def two_mles(make_project) -> list[ModelVersion]:
    projects = [make_project(name=name, n_items=1, n_candidates=1) for name in ("cats", "dogs")]
    return [model_version_get_or_create(project=project, name="mle") for project in projects]


def options(html: str, select: str) -> dict[str, str]:
    """The <option>s of the named <select>: value -> label."""
    body = re.search(rf'<select name="{select}"[^>]*>(.*?)</select>', html, re.S).group(1)
    return dict(re.findall(r'<option value="(\d+)"[^>]*>([^<]*)</option>', body))


def test_the_tuning_run_form_names_each_start_versions_project(staff, two_mles):
    cats, dogs = two_mles
    html = staff.get("/admin/tuning/tuningrun/add/").content.decode()
    choices = options(html, "start_version")
    assert choices[str(cats.pk)] == "mle (cats)" and choices[str(dogs.pk)] == "mle (dogs)"
    assert options(html, "project")[str(cats.project_id)] == "cats"


def test_reward_model_and_version_forms_name_the_project(staff, two_mles):
    cats, dogs = two_mles
    html = staff.get("/admin/rewards/rewardmodel/add/").content.decode()
    assert options(html, "policy")[str(dogs.pk)] == "mle (dogs)"
    RewardModel.objects.create(project=cats.project, name="prefs")
    html = staff.get(f"/admin/projects/modelversion/{dogs.pk}/change/").content.decode()
    assert options(html, "parent")[str(cats.pk)] == "mle (cats)"
    html = staff.get("/admin/projects/candidate/add/").content.decode()
    assert options(html, "model_version")[str(cats.pk)] == "mle (cats)"
