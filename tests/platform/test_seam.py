"""The one seam between the platform and the trainer: web processes never load torch, only
`platform/training/` imports the trainer (besides its torch-free configs), and a tuning run
reads its starting checkpoint and its reward model once each."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.tuning_support import (
    TINY_DATA,
    shapes_project,
    tiny_tune_config,
    trained_reward_model,
    version_with_checkpoint,
)
from training import checkpoints, tuning_run
from training.tuning_run import execute_run
from tuning.services import tuning_run_launch

ROOT = Path(__file__).resolve().parents[2]
TRAINER_IMPORT = re.compile(r"^\s*(?:from|import) (trainer[\w.]*)", re.MULTILINE)

WEB_PROCESS = """
import sys, django
django.setup()
from django.urls import get_resolver
get_resolver().url_patterns  # every view, API and page module
from django.contrib import admin
admin.autodiscover()
from django.test import Client
for path in ("/login/", "/api/schema/", "/"):
    Client().get(path)
print("torch" in sys.modules)
"""


def test_a_web_process_loads_no_torch(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "config.settings",
           "TUNELAB_DATA_DIR": str(tmp_path), "PYTHONPATH": f"{ROOT}:{ROOT / 'platform'}"}
    result = subprocess.run([sys.executable, "-c", WEB_PROCESS], capture_output=True, text=True,
                            cwd=ROOT / "platform", env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_only_platform_training_imports_the_trainer():
    strays = []
    for path in (ROOT / "platform").rglob("*.py"):
        relative = path.relative_to(ROOT / "platform")
        for module in TRAINER_IMPORT.findall(path.read_text(encoding="utf-8")):
            if relative.parts[0] != "training" and module != "trainer.configs":
                strays.append(f"{relative}: {module}")
    assert strays == []


@pytest.mark.django_db
@pytest.mark.usefixtures("sent")
def test_a_learned_run_opens_its_starting_checkpoint_and_its_reward_model_once(
        project_admin, annotator, monkeypatch):
    project = shapes_project(admins=[project_admin])
    reward_model = trained_reward_model(project, annotator)
    run = tuning_run_launch(project=project, start_version=version_with_checkpoint(project),
                            config=tiny_tune_config(), data=TINY_DATA, reward="learned",
                            reward_model=reward_model)
    opened: list[str] = []

    def counting(loader, name):
        def load(path, *args, **kwargs):
            opened.append(f"{name} {Path(path).name}")
            return loader(path, *args, **kwargs)
        return load

    monkeypatch.setattr(checkpoints, "load_checkpoint",
                        counting(checkpoints.load_checkpoint, "checkpoint"))
    monkeypatch.setattr(tuning_run, "load_checkpoint",
                        counting(tuning_run.load_checkpoint, "checkpoint"))
    monkeypatch.setattr(tuning_run, "load_reward_model",
                        counting(tuning_run.load_reward_model, "reward model"))
    execute_run(run.pk, worker="w1")
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert sorted(opened) == ["checkpoint mle.pt", f"reward model {reward_model.pk}.pt"]
