"""`manage.py demo_setup`: builds the demo once, runs again without duplicating anything, adds a
trainer checkpoint's outputs when given one, and always leaves users that can log in with the
printed password. The demo has a project of every task, the three rating modes among them, and
simulated outputs of three quality levels in each task's candidate format (docs/api.md), image
outputs as files; each project's starting model is queued for the worker."""

import io
import re
from io import StringIO
from pathlib import Path

import numpy as np
from django.conf import settings
from django.contrib.auth import authenticate
from django.core.management import call_command
from PIL import Image

from ingest.panoptic import segment_ids
from labeling.models import Task, TaskCandidate
from projects.demo_training import DEMO_TRAIN_TASK
from projects.models import Candidate, DemoModelTraining, Item, Membership, Project
from training.demo import val_scene

TASKS = {"detection", "captioning", "colorization", "panoptic"}


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


def counts(task: str = "detection") -> tuple[int, int, int, int]:
    """Projects, items, candidates and tasks of the demo's projects of `task`."""
    return (Project.objects.filter(task=task).count(),
            Item.objects.filter(project__task=task).count(),
            Candidate.objects.filter(item__project__task=task).count(),
            Task.objects.filter(project__task=task).count())


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
    pairwise = Project.objects.get(task="detection", rating_mode="pairwise")
    assert pairwise.overlap == 2 and pairwise.model_versions.count() == 3
    assert Item.objects.filter(project__task="detection", width=192, height=192).count() == 50
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


def media_file(url: str, project: Project, folder: str) -> Path:
    """The file behind a media URL, which must lie in the project's `folder`."""
    prefix = f"{settings.MEDIA_URL}projects/{project.pk}/{folder}/"
    assert url.startswith(prefix), url
    path = Path(settings.MEDIA_ROOT) / url.removeprefix(settings.MEDIA_URL)
    assert path.is_file(), url
    return path


def scene_of(item: Item):
    """The Synthetic Shapes scene an item shows (its index is in its file name)."""
    index = int(re.fullmatch(r"shapes_val_(\d+)\.png", item.file_name)[1])
    return val_scene(index, item.width)[1]


def by_level(project: Project) -> dict[str, list[Candidate]]:
    """The project's candidates by model version name (the simulated quality levels)."""
    levels: dict[str, list[Candidate]] = {}
    for candidate in Candidate.objects.filter(item__project=project).select_related(
            "item", "model_version").order_by("model_version_id", "id"):
        levels.setdefault(candidate.model_version.name, []).append(candidate)
    return levels


def media_files() -> set[Path]:
    return {p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()}


def test_demo_setup_makes_a_project_of_every_task_and_rating_mode(
        db, monkeypatch, sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        run_demo(monkeypatch, "fixed-demo-pass")
    projects = list(Project.objects.all())
    assert {p.task for p in projects} == TASKS
    assert {p.rating_mode for p in projects} == {"pairwise", "scale", "ranking"}
    for project in projects:
        roles = dict(Membership.objects.filter(project=project)
                     .values_list("user__username", "role"))
        assert roles == {"admin": "admin", "annotator": "annotator"}
        assert project.model_versions.count() == 3
        assert Candidate.objects.filter(item__project=project).count() == \
            3 * project.items.count() > 0
        assert project.tasks.count() > 0
    ranking = Project.objects.get(rating_mode="ranking")
    assert ranking.ranking_k in (3, 4)
    shown = TaskCandidate.objects.filter(task__project=ranking).values_list("task", flat=True)
    assert {shown.filter(task=t).count() for t in shown} == {ranking.ranking_k}
    # Each project's starting model is queued and sent to the worker, once.
    trainings = DemoModelTraining.objects.all()
    assert sorted(t.project_id for t in trainings) == sorted(p.pk for p in projects)
    assert {t.status for t in trainings} == {"queued"}
    assert sorted(sent) == sorted((DEMO_TRAIN_TASK, [t.pk]) for t in trainings)

    # Again: nothing new; the trainings the worker has not finished are sent again (a stopped
    # worker may have lost their messages; only one worker claims each).
    before = {task: counts(task) for task in TASKS}, media_files()
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        run_demo(monkeypatch, "fixed-demo-pass")
    assert ({task: counts(task) for task in TASKS}, media_files()) == before
    assert list(DemoModelTraining.objects.all()) == list(trainings)
    assert sorted(sent) == sorted((DEMO_TRAIN_TASK, [t.pk]) for t in trainings)


def test_demo_setup_writes_each_task_in_its_candidate_format_at_graded_quality(
        db, monkeypatch):
    run_demo(monkeypatch, "fixed-demo-pass")
    captioning = Project.objects.get(task="captioning")
    true_captions = []
    for candidates in by_level(captioning).values():
        for candidate in candidates:
            assert isinstance(candidate.output["caption"], str) and candidate.output["caption"]
        true_captions.append(sum(c.output["caption"] in c.item.ground_truth["captions"]
                                 for c in candidates))
    assert true_captions[0] > true_captions[1] > true_captions[2]  # good, fair, poor

    colorization = Project.objects.get(task="colorization")
    colour_error = []
    for candidates in by_level(colorization).values():
        errors = []
        for candidate in candidates:
            assert set(candidate.output) == {"image_url"}
            path = media_file(candidate.output["image_url"], colorization, "outputs")
            assert f"/outputs/{candidate.model_version_id}/" not in candidate.output["image_url"]
            assert "good" not in path.name and "poor" not in path.name
            with Image.open(candidate.item.image.path) as grey, Image.open(path) as colour:
                assert grey.mode == "L" and colour.mode == "RGB"
                assert colour.size == grey.size == (candidate.item.width, candidate.item.height)
                rgb = np.asarray(colour, dtype=np.float32)
                luma = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
                # The input's brightness is kept: only the colours are wrong.
                assert np.abs(luma - np.asarray(grey, dtype=np.float32)).mean() < 4
            errors.append(np.abs(rgb - scene_of(candidate.item).image).mean())
        colour_error.append(np.mean(errors))
    assert colour_error[0] < colour_error[1] < colour_error[2]

    panoptic = Project.objects.get(task="panoptic")
    category_ids = {c["id"] for c in panoptic.categories}
    right_pixels = []
    for item in panoptic.items.all():
        truth = segment_ids(media_file(item.ground_truth["png_url"], panoptic,
                                       "ground_truth").read_bytes())
        assert {s["id"] for s in item.ground_truth["segments"]} == set(np.unique(truth)) - {0}
    for candidates in by_level(panoptic).values():
        right = []
        for candidate in candidates:
            folder = "outputs"  # under a folder whose name tells no model
            assert f"/outputs/{candidate.model_version_id}/" not in candidate.output["png_url"]
            ids = segment_ids(media_file(candidate.output["png_url"], panoptic,
                                         folder).read_bytes())
            assert ids.shape == (candidate.item.height, candidate.item.width)
            listed = candidate.output["segments"]
            assert {s["id"] for s in listed} == set(np.unique(ids).tolist()) - {0}
            assert {s["category_id"] for s in listed} <= category_ids
            overlay = media_file(candidate.output["overlay_url"], panoptic, folder)
            with Image.open(io.BytesIO(overlay.read_bytes())) as drawn:
                assert drawn.mode == "RGBA" and drawn.size == (ids.shape[1], ids.shape[0])
            right.append((ids == scene_of(candidate.item).panoptic).mean())
        right_pixels.append(np.mean(right))
    assert right_pixels[0] > right_pixels[1] > right_pixels[2]


def test_demo_setup_with_no_training_budget_queues_none(
        db, monkeypatch, sent, django_capture_on_commit_callbacks):
    monkeypatch.setenv("DEMO_CHECKPOINT", "/nonexistent/ckpt.pt")
    with django_capture_on_commit_callbacks(execute=True):
        call_command("demo_setup", train_seconds=0, stdout=StringIO())
    assert Project.objects.count() == 5
    assert not DemoModelTraining.objects.exists() and sent == []
