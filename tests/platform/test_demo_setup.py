"""`manage.py demo_setup`: builds the demo once, runs again without duplicating anything, adds a
trainer checkpoint's outputs when given one, and always leaves users that can log in with the
printed password."""

import re
from io import StringIO

from django.contrib.auth import authenticate
from django.core.management import call_command

from labeling.models import Task
from projects.models import Candidate, Item, Project


def run_demo(monkeypatch, password: str | None, checkpoint: str = "/nonexistent/ckpt.pt") -> str:
    # A checkpoint that is not there is reported and left out (and none is picked up from runs/).
    monkeypatch.setenv("DEMO_CHECKPOINT", checkpoint)
    if password is None:
        monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    else:
        monkeypatch.setenv("DEMO_PASSWORD", password)
    out = StringIO()
    call_command("demo_setup", stdout=out)
    return out.getvalue()


def counts() -> tuple[int, int, int, int]:
    return (Project.objects.count(), Item.objects.count(), Candidate.objects.count(),
            Task.objects.count())


def tiny_checkpoint(path) -> None:
    """An untrained, tiny Pix2seq detector for Synthetic Shapes, saved the trainer's way."""
    from trainer.configs import DataConfig, DetectionTaskConfig, ModelConfig
    from trainer.data.shapes import CLASS_NAMES
    from trainer.models.pix2seq import Pix2SeqModel
    from trainer.tasks.detection import DetectionTask
    from trainer.train.checkpoint import save_checkpoint

    task = DetectionTask(DetectionTaskConfig(max_boxes=3), len(CLASS_NAMES))
    model = Pix2SeqModel(ModelConfig(image_size=32, d_model=32, heads=2, encoder_layers=1,
                                     decoder_layers=1), task.spec)
    save_checkpoint(path, model=model, task=task, class_names=CLASS_NAMES, stage="pretrain",
                    step=7, run_config={}, data_config=DataConfig())


def test_demo_setup_is_idempotent_and_prints_working_passwords(db, monkeypatch, tmp_path):
    first = run_demo(monkeypatch, None)
    assert "Checkpoint /nonexistent/ckpt.pt left out" in first
    assert counts() == (2, 50, 150, 40 * 3 + 10 * 3)
    pairwise = Project.objects.get(rating_mode="pairwise")
    assert pairwise.overlap == 2 and pairwise.model_versions.count() == 3
    assert Item.objects.filter(width=192, height=192).count() == 50
    printed = dict(re.findall(r"(admin|annotator)\s+password: (\S+)", first))
    assert authenticate(username="annotator", password=printed["annotator"])
    assert authenticate(username="admin", password=printed["admin"]).is_superuser

    checkpoint = tmp_path / "tiny.pt"
    tiny_checkpoint(checkpoint)
    second = run_demo(monkeypatch, "fixed-demo-pass", str(checkpoint))
    assert "outputs of checkpoint tiny (pretrain, step 7) added" in second
    assert "annotator  password: fixed-demo-pass" in second
    assert authenticate(username="annotator", password="fixed-demo-pass")
    # 40 items x (greedy + one sample) more candidates; 5 per item now, every pair a task.
    assert counts() == (2, 50, 150 + 80, 40 * 10 + 10 * 3)
    version = pairwise.model_versions.get(name__startswith="checkpoint tiny")
    for output in version.candidates.values_list("output", flat=True):
        for detection in output["objects"]:
            x, y, w, h = detection["bbox"]
            assert x >= 0 and y >= 0 and w >= 1 and h >= 1 and x + w <= 192 and y + h <= 192

    run_demo(monkeypatch, "fixed-demo-pass", str(checkpoint))
    assert counts() == (2, 50, 230, 430)
