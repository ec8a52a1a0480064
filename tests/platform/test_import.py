"""Import of images, ground truth and model outputs: every format of the field, through the
API and the service; one bad record means a 400 naming the file and field and nothing stored."""

import io
import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from common.errors import ApplicationError
from ingest import services
from ingest.planning import ImportFiles
from ingest.services import dataset_import
from ingest.sources import JsonFile, UploadedFileSet
from labeling.models import Task
from projects.models import Candidate, Item, ModelVersion, RatingMode

pytestmark = pytest.mark.django_db

SIZES = {"a.png": (32, 24), "b.png": (20, 30)}


def media_files() -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def upload(name: str, data: bytes | dict | list) -> SimpleUploadedFile:
    if not isinstance(data, bytes):
        data = json.dumps(data).encode()
    return SimpleUploadedFile(name, data)


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture
def pngs(png_bytes) -> dict[str, bytes]:
    return {name: png_bytes(width=w, height=h) for name, (w, h) in SIZES.items()}


def coco_images() -> list[dict]:
    return [{"id": i + 1, "file_name": name, "width": w, "height": h}
            for i, (name, (w, h)) in enumerate(SIZES.items())]


def instances() -> dict:
    return {
        "images": coco_images(),
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 8]},
            {"id": 2, "image_id": 1, "category_id": 2, "bbox": [5, 5, 4, 4], "iscrowd": 1},
            {"id": 3, "image_id": 2, "category_id": 2, "bbox": [0, 0, 6, 7.5]},
        ],
        "categories": [{"id": 1, "name": "circle"}, {"id": 2, "name": "square"}],
    }


def results() -> list[dict]:
    return [
        {"image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 8], "score": 0.4},
        {"image_id": 1, "category_id": 2, "bbox": [3, 3, 5, 5], "score": 0.9},
    ]


def panoptic_png(ids: np.ndarray) -> bytes:
    rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536], axis=-1).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def panoptic_set() -> tuple[dict, dict[str, bytes]]:
    """A COCO panoptic JSON and PNGs for a.png: segment 3 (circle) left, 7 (square) right."""
    ids = np.zeros((24, 32), dtype=np.int64)
    ids[4:20, 2:14] = 3
    ids[:, 16:] = 7
    document = {
        "images": coco_images()[:1],
        "annotations": [{"image_id": 1, "file_name": "a_seg.png", "segments_info": [
            {"id": 3, "category_id": 1}, {"id": 7, "category_id": 2, "iscrowd": 0}]}],
        "categories": [{"id": 1, "name": "circle", "isthing": 1},
                       {"id": 2, "name": "square", "isthing": 0}],
    }
    return document, {"a_seg.png": panoptic_png(ids)}


@pytest.fixture
def project_of(make_project, project_admin, annotator):
    def make(task: str, rating_mode: str = RatingMode.SCALE):
        return make_project(task=task, rating_mode=rating_mode, n_items=0, n_candidates=0,
                            admins=[project_admin], annotators=[annotator])

    return make


@pytest.fixture
def post_import(admin_api):
    def post(project, **fields):
        return admin_api.post(f"/api/projects/{project.pk}/import/", fields,
                              format="multipart")

    return post


def test_detection_images_ground_truth_and_results(project_of, post_import, pngs):
    project = project_of("detection")
    response = post_import(
        project, images=[upload(n, d) for n, d in pngs.items()],
        instances=upload("instances.json", instances()),
        results=upload("results.json", results()), model_version="detector-1",
    )
    assert response.status_code == 201, response.json()
    assert response.json() == {"items_created": 2, "ground_truth_set": 2,
                               "model_version": "detector-1", "candidates_created": 2,
                               "tasks_created": 2}
    items = {item.file_name: item for item in Item.objects.filter(project=project)}
    assert {name: (i.width, i.height) for name, i in items.items()} == SIZES
    assert items["a.png"].ground_truth == {"objects": [
        {"bbox": [1, 2, 10, 8], "category_id": 1},
        {"bbox": [5, 5, 4, 4], "category_id": 2, "iscrowd": 1},
    ]}
    assert items["a.png"].image.read() == pngs["a.png"]
    outputs = {c.item.file_name: c.output for c in Candidate.objects.filter(
        model_version__name="detector-1")}
    # Best score first; an image without results gets a candidate with no objects.
    assert outputs == {"a.png": {"objects": [
        {"bbox": [3, 3, 5, 5], "category_id": 2, "score": 0.9},
        {"bbox": [1, 2, 10, 8], "category_id": 1, "score": 0.4}]},
        "b.png": {"objects": []}}
    assert Task.objects.filter(project=project).count() == 2
    # A second model's results refer to the same images through the instances file.
    response = post_import(project, instances=upload("instances.json", instances()),
                           results=upload("results2.json", results()[:1]),
                           model_version="detector-2")
    assert response.status_code == 201, response.json()
    assert response.json()["items_created"] == 0
    assert Candidate.objects.filter(item__project=project).count() == 4


def test_images_from_a_zip_with_a_top_folder(project_of, post_import, pngs):
    project = project_of("detection")
    archive = zipped({f"set/{n}": d for n, d in pngs.items()}
                     | {"__MACOSX/set/._a.png": b"junk", "set/.DS_Store": b"junk"})
    response = post_import(project, images=[upload("set.zip", archive)])
    assert response.status_code == 201, response.json()
    assert sorted(Item.objects.filter(project=project).values_list("file_name", flat=True)) == [
        "a.png", "b.png"]


def test_captioning(project_of, post_import, pngs):
    project = project_of("captioning")
    captions = {"images": coco_images(), "annotations": [
        {"id": 1, "image_id": 1, "caption": "a red circle"},
        {"id": 2, "image_id": 1, "caption": "one round red shape "},
        {"id": 3, "image_id": 2, "caption": "a square"}]}
    response = post_import(
        project, images=[upload(n, d) for n, d in pngs.items()],
        captions=upload("captions.json", captions),
        results=upload("captions_results.json", [{"image_id": 2, "caption": "a blue square"}]),
        model_version="captioner",
    )
    assert response.status_code == 201, response.json()
    gt = dict(Item.objects.filter(project=project).values_list("file_name", "ground_truth"))
    assert gt == {"a.png": {"captions": ["a red circle", "one round red shape"]},
                  "b.png": {"captions": ["a square"]}}
    assert [(c.item.file_name, c.output) for c in Candidate.objects.filter(
        item__project=project)] == [("b.png", {"caption": "a blue square"})]


def test_colorization(project_of, post_import, pngs, png_bytes):
    project = project_of("colorization")
    colour = png_bytes(width=32, height=24, color=(0, 200, 0))
    response = post_import(project, images=[upload(n, d) for n, d in pngs.items()],
                           colorized=[upload("colour.zip", zipped({"a.png": colour}))],
                           model_version="colorizer")
    assert response.status_code == 201, response.json()
    (candidate,) = Candidate.objects.filter(item__project=project)
    url = candidate.output["image_url"]
    assert url.startswith("/media/projects/") and candidate.item.file_name == "a.png"
    stored = Path(settings.MEDIA_ROOT) / url.removeprefix("/media/")
    assert stored.read_bytes() == colour
    # Annotators see the URL: its folder must not name the model version that made the output.
    folder = url.removeprefix(f"/media/projects/{project.pk}/outputs/").split("/")[0]
    assert folder != str(candidate.model_version_id) and len(folder) == 16


@pytest.mark.parametrize("as_output", [True, False])
def test_panoptic_png_becomes_an_overlay(project_of, post_import, pngs, as_output):
    project = project_of("panoptic")
    document, segment_pngs = panoptic_set()
    fields = {"images": [upload(n, d) for n, d in pngs.items()],
              "panoptic_json": upload("panoptic.json", document),
              "panoptic_pngs": [upload(n, d) for n, d in segment_pngs.items()]}
    if as_output:
        fields["model_version"] = "segmenter"
    response = post_import(project, **fields)
    assert response.status_code == 201, response.json()
    if as_output:
        (candidate,) = Candidate.objects.filter(item__project=project)
        value = candidate.output
    else:
        value = Item.objects.get(project=project, file_name="a.png").ground_truth
        assert not Candidate.objects.exists()
    assert value["segments"] == [{"id": 3, "category_id": 1}, {"id": 7, "category_id": 2}]
    media = Path(settings.MEDIA_ROOT)
    assert (media / value["png_url"].removeprefix("/media/")).read_bytes() == segment_pngs[
        "a_seg.png"]
    overlay = Image.open(media / value["overlay_url"].removeprefix("/media/"))
    assert overlay.mode == "RGBA" and overlay.size == (32, 24)
    rgba = np.asarray(overlay)
    assert rgba[0, 0, 3] == 0  # unlabelled: transparent
    assert 0 < rgba[12, 8, 3] < 255  # inside segment 3: translucent
    assert rgba[12, 2, 3] == 255  # its outline: opaque
    assert tuple(rgba[12, 8, :3]) != tuple(rgba[12, 20, :3])  # two segments, two colours


def _bad(records: dict, **changes) -> dict:
    return {**records, **changes}


BAD_CASES = [
    ("instances", lambda i: _bad(i, annotations=[i["annotations"][0], {
        "id": 9, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3]}]),
     "instances.json", "annotations[1].bbox: expected 4 numbers"),
    ("instances", lambda i: _bad(i, annotations=[{
        "id": 9, "image_id": 1, "category_id": 5, "bbox": [1, 2, 3, 4]}]),
     "instances.json", "annotations[0].category_id: 5 is not a category"),
    ("instances", lambda i: _bad(i, images=[{"id": 1, "file_name": "zzz.png"}]),
     "instances.json", "images[0].file_name: 'zzz.png' is neither"),
    ("instances", lambda i: _bad(i, images=[{"id": 1, "file_name": "a.png", "width": 99}]),
     "instances.json", "images[0].width: 99, but a.png is 32 pixels"),
    ("instances", lambda i: b'{"images": [', "instances.json", "not valid JSON (line 1"),
    ("results", lambda r: [*r, {"image_id": 42, "category_id": 1, "bbox": [0, 0, 1, 1],
                                "score": 0.5}],
     "results.json", "[2].image_id: 42 is not an image of instances.json"),
    ("results", lambda r: [{**r[0], "score": "high"}], "results.json",
     "[0].score: expected a finite number, got a string"),
    # Boxes must lie in their image (a.png is 32x24): pycocotools takes them as they are.
    ("instances", lambda i: _bad(i, annotations=[{
        "id": 9, "image_id": 1, "category_id": 1, "bbox": [500, 500, 50, 50]}]),
     "instances.json", "annotations[0].bbox: annotation 9's box [500, 500, 50, 50] is not "
                       "inside a.png (32x24)"),
    ("instances", lambda i: _bad(i, annotations=[i["annotations"][0], {
        "id": 10, "image_id": 1, "category_id": 1, "bbox": [-2, 3, 5, 5]}]),
     "instances.json", "annotations[1].bbox: annotation 10's box [-2, 3, 5, 5] is not inside"),
    ("instances", lambda i: _bad(i, annotations=[{
        "id": 11, "image_id": 2, "category_id": 1, "bbox": [1, 1, 4, 30]}]),
     "instances.json", "annotations[0].bbox: annotation 11's box [1, 1, 4, 30] is not inside "
                       "b.png (20x30)"),
    ("instances", lambda i: _bad(i, annotations=[{
        "id": 12, "image_id": 1, "category_id": 1, "bbox": [1, 1, 0, 4]}]),
     "instances.json", "annotations[0].bbox: width and height must be > 0, got 0 and 4"),
    ("instances", lambda i: _bad(i, annotations=[{
        "id": 13, "image_id": 1, "category_id": 1, "bbox": [1, 1, -3, 4]}]),
     "instances.json", "annotations[0].bbox: width and height must be > 0, got -3 and 4"),
    ("results", lambda r: [*r, {"image_id": 1, "category_id": 1, "bbox": [30, 20, 5, 5],
                                "score": 0.5}],
     "results.json", "[2].bbox: the box [30, 20, 5, 5] is not inside a.png (32x24)"),
    ("instances", lambda i: b'{"images": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
     "instances.json", "JSON nested too deeply"),
    ("results", lambda r: b"[" * 100_000 + b"]" * 100_000, "results.json",
     "JSON nested too deeply"),
]


@pytest.mark.parametrize(("part", "spoil", "file", "message"), BAD_CASES)
def test_one_bad_record_imports_nothing(project_of, post_import, pngs, part, spoil, file,
                                        message):
    project = project_of("detection")
    parts = {"instances": instances(), "results": results()}
    parts[part] = spoil(parts[part])
    response = post_import(
        project, images=[upload(n, d) for n, d in pngs.items()],
        instances=upload("instances.json", parts["instances"]),
        results=upload("results.json", parts["results"]), model_version="detector-1",
    )
    assert response.status_code == 400
    body = response.json()
    assert any(m.startswith(message) for m in body["errors"][file]), body
    assert file in body["detail"] and "nothing was imported" in body["detail"]
    assert not Item.objects.filter(project=project).exists()
    assert not ModelVersion.objects.filter(project=project).exists()
    assert not Task.objects.filter(project=project).exists()
    assert media_files() == []


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("bad.png", b"this is not an image", "bad.png: cannot be read as an image"),
        ("notes.txt", b"hello", "notes.txt: not an expected file"),
        ("cut.png", None, "cut.png: cannot be read as an image"),
    ],
)
def test_corrupt_or_non_image_upload_is_refused(project_of, post_import, pngs, name, data,
                                                message):
    project = project_of("detection")
    data = pngs["a.png"][:60] if data is None else data  # None: a truncated PNG
    response = post_import(project, images=[upload("a.png", pngs["a.png"]), upload(name, data)])
    assert response.status_code == 400
    assert any(m.startswith(message) for m in response.json()["errors"]["images"])
    assert not Item.objects.filter(project=project).exists() and media_files() == []


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"../evil.png": b"x", "a.png": b"x"}, "../evil.png: has a path that leaves"),
        ({"/abs.png": b"x"}, "/abs.png: has a path that leaves"),
        ({"bomb.png": b"\0" * 2_000_000}, "bomb.png: compressed"),
    ],
)
def test_dangerous_zips_are_refused(project_of, post_import, members, message):
    project = project_of("detection")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member, data in members.items():
            archive.writestr(zipfile.ZipInfo(member), data, compress_type=zipfile.ZIP_DEFLATED)
    response = post_import(project, images=[upload("evil.zip", buffer.getvalue())])
    assert response.status_code == 400
    errors = response.json()["errors"]["evil.zip"]
    assert any(m.startswith(message) for m in errors), errors
    assert not Item.objects.exists() and media_files() == []


def test_a_box_on_the_edge_of_its_image_is_inside(project_of, post_import, pngs):
    project = project_of("detection")
    edge = {**instances(), "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 32, 24]},
        {"id": 2, "image_id": 2, "category_id": 1, "bbox": [19.5, 29.5, 0.5, 0.5]},
    ]}
    response = post_import(project, images=[upload(n, d) for n, d in pngs.items()],
                           instances=upload("instances.json", edge))
    assert response.status_code == 201, response.json()
    assert Item.objects.get(project=project, file_name="a.png").ground_truth == {
        "objects": [{"bbox": [0.0, 0.0, 32.0, 24.0], "category_id": 1}]}


def _stored_zip(members: dict[str, bytes]) -> bytearray:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return bytearray(buffer.getvalue())


def _bad_crc(pngs: dict[str, bytes]) -> bytes:
    """b.png's bytes changed after its CRC was written."""
    archive = _stored_zip(pngs)
    at = archive.index(pngs["b.png"]) + 40
    archive[at] ^= 0xFF
    return bytes(archive)


def _understated_size(pngs: dict[str, bytes]) -> bytes:
    """b.png's headers (local and central) say it is 10 bytes long."""
    archive = _stored_zip(pngs)
    info = zipfile.ZipFile(io.BytesIO(bytes(archive))).getinfo("b.png")
    struct.pack_into("<I", archive, info.header_offset + 22, 10)
    entry = 0
    while archive[entry + 46:entry + 51] != b"b.png":  # b.png's central directory entry
        entry = archive.index(b"PK\x01\x02", entry + 1)
    struct.pack_into("<I", archive, entry + 24, 10)
    return bytes(archive)


@pytest.mark.parametrize("spoil", [_bad_crc, _understated_size])
@pytest.mark.parametrize("field", ["images", "colorized"])
def test_a_zip_member_that_does_not_unpack_is_refused(project_of, post_import, pngs, spoil,
                                                     field):
    if field == "images":
        project, fields = project_of("detection"), {}
    else:
        project, fields = project_of("colorization"), {"model_version": "colour-1"}
        fields["images"] = [upload("plain.zip", zipped(pngs))]
    response = post_import(project, **fields, **{field: [upload("broken.zip", spoil(pngs))]})
    assert response.status_code == 400
    body = response.json()
    errors = body["errors"]["broken.zip"]
    assert any(m.startswith("b.png: cannot be unpacked") for m in errors), body
    assert not Item.objects.filter(project=project).exists() and media_files() == []
    assert not ModelVersion.objects.filter(project=project).exists()


def test_too_many_files_asks_for_a_zip(project_of, post_import, pngs, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 1
    response = post_import(project_of("detection"),
                           images=[upload(n, d) for n, d in pngs.items()])
    assert response.status_code == 400
    assert "upload a .zip" in response.json()["errors"]["images"][0]


def test_not_a_zip(project_of, post_import):
    response = post_import(project_of("detection"), images=[upload("x.zip", b"PK nope")])
    assert response.status_code == 400
    assert "not a readable zip" in response.json()["errors"]["x.zip"][0]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"results": results()}, "results"),  # no instances to resolve image ids
        ({"instances": instances(), "results": results()}, "model_version"),
        ({"captions": {"images": [], "annotations": []}}, "captions"),  # not a caption project
        ({}, "images"),
    ],
)
def test_inconsistent_arguments(project_of, post_import, fields, field):
    project = project_of("detection")
    body = {key: upload(f"{key}.json", value) for key, value in fields.items()}
    response = post_import(project, **body)
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_an_image_name_already_in_the_project_is_refused(project_of, post_import, pngs):
    project = project_of("detection")
    assert post_import(project, images=[upload("a.png", pngs["a.png"])]).status_code == 201
    response = post_import(project, images=[upload("a.png", pngs["a.png"])])
    assert response.status_code == 400
    assert "a.png: an item of this name exists" in response.json()["errors"]["images"][0]
    assert Item.objects.filter(project=project).count() == 1


def test_a_failure_while_writing_leaves_no_rows_and_no_files(project_of, pngs, monkeypatch):
    project = project_of("colorization")

    def fail(**kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(services, "tasks_create", fail)
    files = ImportFiles(
        images=UploadedFileSet("images", [upload(n, d) for n, d in pngs.items()]),
        colorized=UploadedFileSet("colorized", [upload("a.png", pngs["a.png"])]),
    )
    with pytest.raises(RuntimeError):
        dataset_import(project=project, files=files, model_version="colorizer")
    assert not Item.objects.filter(project=project).exists()
    assert not Candidate.objects.exists() and media_files() == []


def test_service_reports_every_problem_by_file(project_of, pngs):
    bad = instances()
    bad["annotations"][0]["bbox"] = "wide"
    bad["annotations"][2]["image_id"] = 77
    files = ImportFiles(
        images=UploadedFileSet("images", [upload(n, d) for n, d in pngs.items()]),
        instances=JsonFile("instances.json", json.dumps(bad).encode()),
    )
    with pytest.raises(ApplicationError) as caught:
        dataset_import(project=project_of("detection"), files=files)
    assert caught.value.errors == {"instances.json": [
        "annotations[0].bbox: expected 4 numbers [x, y, width, height], got a string.",
        "annotations[2].image_id: 77 is not an image of instances.json.",
    ]}


@pytest.mark.parametrize(
    ("client", "status"),
    [("anon_client", 401), ("annotator_api", 403), ("outsider_api", 404), ("admin_api", 201)],
)
def test_import_permissions(request, project_of, pngs, client, status):
    project = project_of("detection")
    api = request.getfixturevalue(client)
    response = api.post(f"/api/projects/{project.pk}/import/",
                        {"images": [upload("a.png", pngs["a.png"])]}, format="multipart")
    assert response.status_code == status
    assert Item.objects.filter(project=project).exists() == (status == 201)
