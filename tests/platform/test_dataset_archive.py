"""Preference data that trains anywhere: outputs inline in the export, the dataset archive
(`format=dataset`) that the real `datasets` library loads, and the archive imported back into a
new project as imported feedback."""

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image

from labeling.models import Comparison, Rating
from labeling.quality import project_quality
from labeling.services.answers import answer_submit
from labeling.services.leases import next_task_for
from projects.models import Candidate, Item, Project, RatingMode
from projects.services import project_create

pytestmark = pytest.mark.django_db

# (task, rating mode) of the projects the archive is tried on: every task, every mode.
CASES = [("detection", RatingMode.PAIRWISE), ("captioning", RatingMode.SCALE),
         ("colorization", RatingMode.RANKING), ("panoptic", RatingMode.PAIRWISE)]
FILE_KEYS = ("image", "png", "overlay")


def _png(size: tuple[int, int], color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def _with_stored_outputs(project: Project) -> None:
    """Outputs with real files under the project's media folder, as imports and workers
    write them (the fixture's own outputs name files that do not exist)."""
    for candidate in Candidate.objects.filter(item__project=project):
        size = (candidate.item.width, candidate.item.height)

        def store(name: str, data: bytes, candidate: Candidate = candidate) -> str:
            return default_storage.url(default_storage.save(
                f"projects/{project.pk}/outputs/{candidate.pk}/{name}", ContentFile(data)))

        if project.task == "colorization":
            candidate.output = {"image_url": store("c.png", _png(size, (candidate.pk, 9, 9)))}
        else:  # panoptic: one segment (id 1) over the whole image
            candidate.output = {"png_url": store("p.png", _png(size, (1, 0, 0))),
                                "overlay_url": store("o.png", _png(size, (candidate.pk, 1, 1))),
                                "segments": [{"id": 1, "category_id": 2}]}
        candidate.save()


def _answer_everything(project: Project, users) -> None:
    """Each user answers every task the queue gives them (rankings in reverse screen order)."""
    for user in users:
        spent = 700
        while (lease := next_task_for(user=user, project=project)) is not None:
            task = lease.task
            shown = list(task.slots.order_by("position").values_list("candidate_id", flat=True))
            answer = {RatingMode.SCALE: {"score": 1 + task.pk % 5},
                      RatingMode.PAIRWISE: {"choice": "AB"[task.pk % 2]},
                      RatingMode.RANKING: {"ranking": shown[::-1]}}[project.rating_mode]
            spent += 1
            answer_submit(user=user, task=task, answer=answer,
                          idempotency_key=f"{user.pk}-{task.pk}", time_spent_ms=spent)


@pytest.fixture
def answered(make_project, make_user, project_admin, annotator):
    """A project of `task` and `mode`, every task answered by two annotators, with a licence."""
    def make(task: str, mode: str) -> Project:
        bob = make_user()
        project = make_project(task=task, rating_mode=mode, n_items=2, n_candidates=3,
                               overlap=2, admins=[project_admin], annotators=[annotator, bob])
        project.licence = "CC-BY-4.0"
        project.save()
        if task in ("colorization", "panoptic"):
            _with_stored_outputs(project)
        _answer_everything(project, [annotator, bob])
        return project

    return make


@pytest.fixture
def admin(api_client_for, project_admin):
    return api_client_for(project_admin)


def _archive(admin, project: Project, **params) -> zipfile.ZipFile:
    response = admin.get(f"/api/projects/{project.pk}/export/", {"format": "dataset", **params})
    assert response.status_code == 200, getattr(response, "data", response)
    assert response["Content-Type"] == "application/zip"
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def _rows(archive: zipfile.ZipFile) -> list[dict]:
    return [json.loads(line) for line in archive.read("data.jsonl").splitlines()]


def _digest(archive: zipfile.ZipFile, path: str | None) -> str | None:
    return None if path is None else hashlib.sha256(archive.read(path)).hexdigest()


def _content(archive: zipfile.ZipFile) -> list[dict]:
    """The rows as what they say, not by which ids: files by their bytes, a ranking by the
    positions of the candidates it lists."""
    out = []
    for row in _rows(archive):
        outputs = [{key: _digest(archive, value) if key in FILE_KEYS else value
                    for key, value in output.items()} for output in row["outputs"]]
        ranking = ([row["candidates"].index(c) for c in row["ranking"]] if row["ranking"]
                   else None)
        out.append({
            "kind": row["kind"], "file_name": row["file_name"],
            "image": _digest(archive, row["image"]), "model_versions": row["model_versions"],
            "outputs": outputs, "score": row["score"], "choice": row["choice"],
            "ranking": ranking, "annotator": row["annotator"],
            "time_spent_ms": row["time_spent_ms"], "created_at": row["created_at"],
        })
    return out


def _import(admin, project: Project, data: bytes, name: str = "dataset.zip"):
    upload = ContentFile(data, name=name)
    return admin.post(f"/api/projects/{project.pk}/import/", {"dataset": upload},
                      format="multipart")


def _empty_like(project: Project, admin_user, name: str = "copy") -> Project:
    from projects.services import membership_set
    copy = project_create(name=name, task=project.task, rating_mode=project.rating_mode,
                          ranking_k=project.ranking_k, overlap=project.overlap)
    membership_set(project=copy, user=admin_user, role="admin")
    return copy


# --- outputs inline ----------------------------------------------------------------------


def test_jsonl_with_outputs_puts_each_shown_candidates_output_and_the_image_in_the_row(
        answered, admin):
    project = answered("detection", RatingMode.PAIRWISE)
    response = admin.get(f"/api/projects/{project.pk}/export/",
                         {"format": "jsonl", "include": "outputs"})
    rows = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    assert len(rows) == Comparison.objects.filter(task__project=project).count() > 0
    for row in rows:
        item = Item.objects.get(pk=row["item"])
        assert row["image"] == item.image.url
        for candidate_id, output in zip(row["candidates"], row["outputs"], strict=True):
            objects = Candidate.objects.get(pk=candidate_id).output["objects"]
            assert output == {
                "boxes": [o["bbox"] for o in objects],
                "category_ids": [o["category_id"] for o in objects],
                "classes": ["circle" for _ in objects],
                "scores": [o["score"] for o in objects],
            }


@pytest.mark.parametrize(("task", "mode"), CASES)
def test_every_format_has_the_outputs_when_asked_and_only_then(answered, admin, task, mode):
    project = answered(task, mode)
    url = f"/api/projects/{project.pk}/export/"
    plain = admin.get(url, {"format": "json"}).json()["results"]
    inline = admin.get(url, {"format": "json", "include": "outputs"}).json()["results"]
    assert "outputs" not in plain[0]
    assert [{k: v for k, v in row.items() if k not in ("image", "outputs")}
            for row in inline] == plain
    candidate = Candidate.objects.get(pk=inline[0]["candidates"][0])
    expected = {
        "captioning": {"caption": candidate.output.get("caption")},
        "colorization": {"image": candidate.output.get("image_url")},
        "panoptic": {"png": candidate.output.get("png_url"),
                     "overlay": candidate.output.get("overlay_url"),
                     "segments": [{"id": 1, "category_id": 2, "iscrowd": 0}]},
    }.get(task)
    if expected:
        assert inline[0]["outputs"][0] == expected
    body = b"".join(admin.get(url, {"format": "csv", "include": "outputs"}).streaming_content)
    header = body.decode().splitlines()[0].split(",")
    assert header[-2:] == ["image", "outputs"]


# --- the archive -----------------------------------------------------------------------------


@pytest.mark.parametrize(("task", "mode"), CASES)
def test_the_archive_loads_with_datasets_and_every_image_and_output_opens(
        answered, admin, task, mode, tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    project = answered(task, mode)
    root = tmp_path / "unpacked"
    _archive(admin, project).extractall(root)
    loaded = datasets.load_dataset("json", data_files=str(root / "data.jsonl"),
                                   cache_dir=str(tmp_path / "hf-cache"), split="train")
    answers = Rating if mode == RatingMode.SCALE else Comparison
    assert len(loaded) == answers.objects.filter(task__project=project).count() > 0
    opened = 0
    for row in loaded:
        with Image.open(root / row["image"]) as image:
            assert image.size == (32, 24)
        assert len(row["outputs"]) == len(row["candidates"])
        for output in row["outputs"]:
            for key in FILE_KEYS:
                if output.get(key) is not None:
                    with Image.open(root / output[key]) as image:
                        image.load()
                        opened += 1
            if task == "detection":
                assert output["boxes"] and output["classes"] == ["circle"]
            if task == "captioning":
                assert output["caption"].startswith("a red circle")
    assert opened > 0 or task in ("detection", "captioning")


def test_the_card_states_what_the_rows_are(answered, admin, annotator):
    project = answered("detection", RatingMode.PAIRWISE)
    archive = _archive(admin, project, annotator=annotator.username)
    card = archive.read("README.md").decode()
    for fact in ("Task: detection", "Rating mode: pairwise", "1: circle, 2: square",
                 "Annotators: 1 of the project's own", "Licence: CC-BY-4.0",
                 f"annotator={annotator.username}", "pairwise_agreement_rate",
                 'load_dataset("json", data_files="data.jsonl")'):
        assert fact in card, fact
    assert {row["annotator"] for row in _rows(archive)} == {annotator.username}
    meta = json.loads(archive.read("project.json"))
    assert (meta["task"], meta["rating_mode"], meta["licence"]) == (
        "detection", "pairwise", "CC-BY-4.0")


def test_the_archive_holds_no_media_of_another_project(answered, admin, other_project):
    project = answered("colorization", RatingMode.RANKING)
    elsewhere = default_storage.save(f"projects/{other_project.pk}/outputs/x/secret.png",
                                     ContentFile(_png((32, 24), (1, 2, 3))))
    stolen = Candidate.objects.filter(item__project=project).first()
    stolen.output = {"image_url": default_storage.url(elsewhere)}
    stolen.save()
    archive = _archive(admin, project)
    assert not any("secret" in name for name in archive.namelist())
    outputs = {c: o for row in _rows(archive)
               for c, o in zip(row["candidates"], row["outputs"], strict=True)}
    assert outputs[stolen.pk] == {"image": None}
    digest = hashlib.sha256(default_storage.open(elsewhere).read()).hexdigest()
    assert digest not in {_digest(archive, n) for n in archive.namelist()}


@pytest.mark.parametrize(("who", "status"), [("annotator", 403), ("outsider", 404)])
def test_only_project_admins_export_the_archive(request, answered, api_client_for, who, status):
    project = answered("captioning", RatingMode.SCALE)
    response = api_client_for(request.getfixturevalue(who)).get(
        f"/api/projects/{project.pk}/export/", {"format": "dataset"})
    assert response.status_code == status


# --- back in ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("task", "mode"), CASES)
def test_round_trip_gives_the_same_rows_outputs_and_images(
        answered, admin, project_admin, task, mode):
    project = answered(task, mode)
    first = _archive(admin, project)
    copy = _empty_like(project, project_admin)
    response = _import(admin, copy, first.fp.getvalue())
    assert response.status_code == 201, response.json()
    assert response.json()["answers_imported"] == len(_rows(first))
    second = _archive(admin, copy)
    assert _content(second) == _content(first)
    assert Project.objects.get(pk=copy.pk).categories == project.categories


def test_imported_feedback_is_kept_apart_from_the_projects_own_annotators(
        answered, admin, project_admin, annotator):
    project = answered("captioning", RatingMode.SCALE)
    copy = _empty_like(project, project_admin)
    from projects.services import membership_set
    membership_set(project=copy, user=annotator, role="annotator")
    assert _import(admin, copy, _archive(admin, project).fp.getvalue()).status_code == 201
    imported = Rating.objects.filter(task__project=copy)
    # Reward models read every Rating and Comparison of the project: the imported are there.
    assert imported.count() == Rating.objects.filter(task__project=project).count()
    assert not imported.filter(annotator__memberships__project=copy).exists()
    assert not imported.filter(annotator__is_active=True).exists()
    quality = project_quality(project=copy)
    assert (quality.answers, quality.agreement, quality.annotators) == (0, None, [])
    # The queue still wants the project's own answers on every task (overlap 2).
    assert next_task_for(user=annotator, project=copy) is not None


def test_a_bad_row_is_refused_with_the_file_line_and_field_and_nothing_is_written(
        answered, admin, project_admin):
    project = answered("captioning", RatingMode.SCALE)
    source = _archive(admin, project)
    rows = _rows(source)
    rows[1]["score"] = 9
    broken = io.BytesIO()
    with zipfile.ZipFile(broken, "w") as archive:
        for name in source.namelist():
            data = source.read(name)
            if name == "data.jsonl":
                data = "\n".join(json.dumps(row) for row in rows).encode()
            archive.writestr(name, data)
    copy = _empty_like(project, project_admin)
    response = _import(admin, copy, broken.getvalue())
    assert response.status_code == 400
    messages = response.json()["errors"]["data.jsonl"]
    assert messages[0].startswith("line 2: score: A score is a whole number from 1 to 5")
    assert not Item.objects.filter(project=copy).exists()
    assert not Rating.objects.filter(task__project=copy).exists()


def test_an_archive_goes_only_into_an_empty_project_of_its_task(
        answered, admin, project_admin, make_project):
    project = answered("captioning", RatingMode.SCALE)
    data = _archive(admin, project).fp.getvalue()
    full = make_project(task="captioning", rating_mode=RatingMode.SCALE,
                        admins=[project_admin])
    response = _import(admin, full, data)
    assert response.status_code == 400 and "dataset" in response.json()["errors"]
    other_task = project_create(name="detect", task="detection",
                                rating_mode=RatingMode.SCALE)
    from projects.services import membership_set
    membership_set(project=other_task, user=project_admin, role="admin")
    response = _import(admin, other_task, data)
    assert response.status_code == 400
    assert response.json()["errors"]["project.json"] == [
        "task: the archive's is 'captioning', the project's 'detection'."]
    response = _import(admin, _empty_like(project, project_admin), b"not a zip")
    assert response.status_code == 400 and "dataset.zip" in response.json()["errors"]


def test_import_data_command_takes_an_archive(answered, admin, project_admin, tmp_path):
    project = answered("detection", RatingMode.PAIRWISE)
    first = _archive(admin, project)
    path: Path = tmp_path / "dataset.zip"
    path.write_bytes(first.fp.getvalue())
    copy = _empty_like(project, project_admin)
    out = io.StringIO()
    call_command("import_data", "--project", copy.name, "--dataset", str(path), stdout=out)
    assert f"answers imported: {len(_rows(first))}" in out.getvalue()
    assert _content(_archive(admin, copy)) == _content(first)
    with pytest.raises(CommandError, match="items"):
        call_command("import_data", "--project", copy.name, "--dataset", str(path))
