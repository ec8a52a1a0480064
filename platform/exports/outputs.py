"""Candidate outputs as the export writes them inline (`include=outputs`, and every dataset
archive), with the item's image: each task's output in its own form, files as references.

- detection: `{"boxes": [[x, y, w, h], ...], "category_ids": [...], "classes": [names],
  "scores": [...]}` (COCO pixels of the item's image, one entry per object, best first);
- captioning: `{"caption": "..."}`;
- colorization: `{"image": ref}`, the colorized image;
- panoptic: `{"png": ref, "overlay": ref, "segments": [{"id", "category_id", "iscrowd"}]}`
  (the COCO panoptic PNG and the overlay annotators saw; either may be null).

A reference is the file's URL (`UrlRefs`, the plain export) or its path inside the archive
(`ArchiveRefs`). An archive only holds media of its own project: a reference to any other
file is null there.
"""

import json
from pathlib import PurePosixPath
from typing import Protocol
from urllib.parse import unquote

from django.core.files.storage import default_storage

from ingest.sources import IMAGE_SUFFIXES, plain_member_name
from projects.models import Project, VisionTask

# Where an output's files are in a candidate's stored output, and the keys the export gives them.
FILE_KEYS = {
    VisionTask.COLORIZATION: (("image_url", "image"),),
    VisionTask.PANOPTIC: (("png_url", "png"), ("overlay_url", "overlay")),
}


_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class Output(dict):
    """An output in its export form, with its JSON text made once: one candidate's output is
    in every row that shows it, and encoding it per row would cost more than the rest of the
    row."""

    __slots__ = ("json",)

    def __init__(self, form: dict) -> None:
        super().__init__(form)
        self.json = _encode(form)


class MediaRefs(Protocol):
    """How the export refers to a stored file."""

    def image(self, item_id: int, file_name: str, name: str) -> str | None:
        """An item's image, stored under `name` (relative to MEDIA_ROOT)."""

    def output(self, candidate_id: int, key: str, url: str) -> str | None:
        """One file of a candidate's output (`key`: image, png or overlay), by its URL."""


class UrlRefs:
    """Files by their URLs, as the API gives them (the media route checks who may read them)."""

    def image(self, item_id: int, file_name: str, name: str) -> str | None:
        return default_storage.url(name) if name else None

    def output(self, candidate_id: int, key: str, url: str) -> str | None:
        return url


def _suffix(name: str) -> str:
    suffix = PurePosixPath(name).suffix.lower()
    return suffix if suffix in IMAGE_SUFFIXES else ".png"


class ArchiveRefs:
    """Files by their paths inside a dataset archive: `images/<file name>` (or
    `images/<item id><suffix>` when the file name would not survive unpacking) and
    `outputs/<candidate id>_<key><suffix>`. `stored_name` says which stored file a reference
    stands for, so the archive's writer puts each file at the path its rows name."""

    def __init__(self, project: Project) -> None:
        self.prefix = f"projects/{project.pk}/"
        self.base_url = default_storage.base_url

    def project_media(self, name: str) -> bool:
        """Whether `name` (relative to MEDIA_ROOT) is a file of this project, in plain form."""
        return (name.startswith(self.prefix) and "\\" not in name
                and not any(part in ("", ".", "..") for part in name.split("/")))

    def stored_name(self, url: str) -> str | None:
        """The name under MEDIA_ROOT of a media URL of this project; None for anything else."""
        if not isinstance(url, str) or not url.startswith(self.base_url):
            return None
        name = unquote(url[len(self.base_url):])
        return name if self.project_media(name) else None

    def image(self, item_id: int, file_name: str, name: str) -> str | None:
        if not self.project_media(name):
            return None
        if plain_member_name(file_name):
            return f"images/{file_name}"
        return f"images/{item_id}{_suffix(name)}"

    def output(self, candidate_id: int, key: str, url: str) -> str | None:
        name = self.stored_name(url)
        return None if name is None else f"outputs/{candidate_id}_{key}{_suffix(name)}"


class OutputForms:
    """Stored candidate outputs (docs/api.md) to the export's forms (the module docstring)."""

    def __init__(self, project: Project, refs: MediaRefs) -> None:
        self.task = project.task
        self.refs = refs
        self.classes = {c["id"]: c["name"] for c in project.categories
                        if isinstance(c, dict) and "id" in c and "name" in c}

    def of(self, candidate_id: int, output: dict) -> Output:
        return Output(self._form(candidate_id, output))

    def _form(self, candidate_id: int, output: dict) -> dict:
        if self.task == VisionTask.DETECTION:
            objects = [obj for obj in output.get("objects", []) if isinstance(obj, dict)]
            return {
                "boxes": [obj.get("bbox") for obj in objects],
                "category_ids": [obj.get("category_id") for obj in objects],
                "classes": [self.classes.get(obj.get("category_id")) for obj in objects],
                "scores": [obj.get("score") for obj in objects],
            }
        if self.task == VisionTask.CAPTIONING:
            return {"caption": output.get("caption")}
        form = {key: self._file(candidate_id, key, output.get(stored))
                for stored, key in FILE_KEYS[self.task]}
        if self.task == VisionTask.PANOPTIC:
            form["segments"] = [
                {"id": s.get("id"), "category_id": s.get("category_id"),
                 "iscrowd": s.get("iscrowd", 0)}
                for s in output.get("segments", []) if isinstance(s, dict)
            ]
        return form

    def _file(self, candidate_id: int, key: str, url: object) -> str | None:
        return self.refs.output(candidate_id, key, url) if isinstance(url, str) else None
