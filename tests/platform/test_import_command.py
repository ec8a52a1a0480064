"""`manage.py import_data`: the import from a folder or zip on disk, with CLI errors that say
what is wrong (CommandError, no traceback) and import nothing."""

import io
import json
import zipfile

import pytest
from django.core.management import CommandError, call_command

from projects.models import Candidate, Item, RatingMode

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(make_project, project_admin):
    return make_project(task="detection", rating_mode=RatingMode.SCALE, n_items=0,
                        n_candidates=0, admins=[project_admin], name="cli")


@pytest.fixture
def dataset(tmp_path, png_bytes):
    """images/ with two PNGs, instances.json and results.json beside it."""
    images = tmp_path / "images"
    images.mkdir()
    (images / "a.png").write_bytes(png_bytes(width=32, height=24))
    (images / "b.png").write_bytes(png_bytes(width=16, height=16))
    (tmp_path / "instances.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.png", "width": 32, "height": 24},
                   {"id": 2, "file_name": "b.png", "width": 16, "height": 16}],
        "annotations": [{"id": 1, "image_id": 2, "category_id": 1, "bbox": [1, 1, 4, 4]}],
        "categories": [{"id": 1, "name": "circle"}, {"id": 2, "name": "square"}],
    }))
    (tmp_path / "results.json").write_text(json.dumps(
        [{"image_id": 1, "category_id": 2, "bbox": [0, 0, 3, 3], "score": 0.7}]
    ))
    return tmp_path


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("import_data", *args, stdout=out)
    return out.getvalue()


def test_folder_with_ground_truth_and_results(project, dataset):
    out = run("--project", "cli", "--images", str(dataset / "images"),
              "--instances", str(dataset / "instances.json"),
              "--results", str(dataset / "results.json"), "--model-version", "det-1")
    assert "items created: 2" in out and "candidates created: 2" in out
    gt = dict(Item.objects.filter(project=project).values_list("file_name", "ground_truth"))
    assert gt == {"a.png": {"objects": []},
                  "b.png": {"objects": [{"bbox": [1, 1, 4, 4], "category_id": 1}]}}
    assert Candidate.objects.get(item__file_name="a.png").output == {
        "objects": [{"bbox": [0, 0, 3, 3], "category_id": 2, "score": 0.7}]}


def test_zip_of_images(project, dataset):
    archive = dataset / "images.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in (dataset / "images").iterdir():
            zipped.write(path, f"images/{path.name}")
    run("--project", "cli", "--images", str(archive))
    assert sorted(Item.objects.filter(project=project).values_list("file_name", flat=True)) == [
        "a.png", "b.png"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--project", "nope", "--images", "{d}/images"], "--project: no project named 'nope'"),
        (["--project", "cli", "--images", "{d}/missing"], "--images: {d}/missing does not exist"),
        (["--project", "cli", "--images", "{d}/instances.json"], "neither a folder nor a .zip"),
        (["--project", "cli", "--images", "{d}/images", "--results", "{d}/results.json"],
         "model_version: Model outputs need the model version's name"),
    ],
)
def test_cli_errors(project, dataset, args, message):
    with pytest.raises(CommandError) as caught:
        run(*(arg.format(d=dataset) for arg in args))
    assert message.format(d=dataset) in str(caught.value)
    assert not Item.objects.exists()


def test_a_bad_record_names_file_and_field_and_imports_nothing(project, dataset):
    document = json.loads((dataset / "instances.json").read_text())
    document["annotations"][0]["bbox"] = [1, 1, 4]
    (dataset / "instances.json").write_text(json.dumps(document))
    with pytest.raises(CommandError) as caught:
        run("--project", "cli", "--images", str(dataset / "images"),
            "--instances", str(dataset / "instances.json"))
    assert "instances.json: annotations[0].bbox: expected 4 numbers" in str(caught.value)
    assert not Item.objects.exists()


def test_a_zip_member_with_a_bad_crc_is_a_message_not_a_traceback(project, dataset):
    archive = dataset / "images.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zipped:
        for path in sorted((dataset / "images").iterdir()):
            zipped.write(path, path.name)
    data = bytearray(archive.read_bytes())
    data[data.index((dataset / "images" / "b.png").read_bytes()) + 40] ^= 0xFF
    archive.write_bytes(bytes(data))
    with pytest.raises(CommandError) as caught:
        run("--project", "cli", "--images", str(archive))
    assert "images.zip: b.png: cannot be unpacked (Bad CRC-32" in str(caught.value)
    assert not Item.objects.exists()


def test_json_nested_without_end_is_a_message(project, dataset):
    (dataset / "instances.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CommandError) as caught:
        run("--project", "cli", "--images", str(dataset / "images"),
            "--instances", str(dataset / "instances.json"))
    assert "instances.json: JSON nested too deeply" in str(caught.value)
    assert not Item.objects.exists()

