"""`manage.py demo_setup`: builds the demo once, runs again without duplicating anything, and
always leaves users that can log in with the printed password."""

import re
from io import StringIO

from django.contrib.auth import authenticate
from django.core.management import call_command

from labeling.models import Task
from projects.models import Candidate, Item, Project


def run_demo(monkeypatch, password: str | None) -> str:
    # A checkpoint that is not there is reported and left out (and none is picked up from runs/).
    monkeypatch.setenv("DEMO_CHECKPOINT", "/nonexistent/checkpoint.pt")
    if password is None:
        monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    else:
        monkeypatch.setenv("DEMO_PASSWORD", password)
    out = StringIO()
    call_command("demo_setup", stdout=out)
    return out.getvalue()


def test_demo_setup_is_idempotent_and_prints_working_passwords(db, monkeypatch):
    first = run_demo(monkeypatch, None)
    assert "Checkpoint /nonexistent/checkpoint.pt left out" in first
    counts = (Project.objects.count(), Item.objects.count(), Candidate.objects.count(),
              Task.objects.count())
    assert counts == (2, 50, 150, 40 * 3 + 10 * 3)
    pairwise = Project.objects.get(rating_mode="pairwise")
    assert pairwise.overlap == 2 and pairwise.model_versions.count() == 3
    assert Item.objects.filter(width=192, height=192).count() == 50
    printed = dict(re.findall(r"(admin|annotator)\s+password: (\S+)", first))
    assert authenticate(username="annotator", password=printed["annotator"])
    assert authenticate(username="admin", password=printed["admin"]).is_superuser

    second = run_demo(monkeypatch, "fixed-demo-pass")
    assert (Project.objects.count(), Item.objects.count(), Candidate.objects.count(),
            Task.objects.count()) == counts
    assert "annotator  password: fixed-demo-pass" in second
    assert authenticate(username="annotator", password="fixed-demo-pass")
