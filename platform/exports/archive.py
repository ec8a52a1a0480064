"""The dataset archive (`format=dataset`): one .zip holding everything a row refers to.

    data.jsonl     the export's rows with outputs inline (`exports.outputs`), files as paths
    images/...     the items' images the rows name
    outputs/...    the output images (colorization, panoptic) of the candidates the rows show
    project.json   what an import into another project needs: task, rating mode, categories
    README.md      the dataset card (`exports.card`)

Paths are relative to the archive's root, so on the unpacked archive
`datasets.load_dataset("json", data_files="data.jsonl")` gives rows whose `image` and output
paths open. Only files of the exported project go in (`ArchiveRefs`).

The zip is written with the standard library's `zipfile` onto a write-only sink: ZipFile finds
the stream cannot seek and writes each member's sizes in a data descriptor after its data, so
every member, data.jsonl included, is compressed and sent while it is produced and never held
whole; the sink is emptied into the response after each chunk. (`stream-zip` does the same;
zipfile does it without a dependency.) data.jsonl is deflated; images are stored as they are,
being compressed already.
"""

import io
import json
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime

from django.core.files.storage import default_storage

from exports.card import dataset_card
from exports.outputs import FILE_KEYS, ArchiveRefs, OutputForms
from exports.selectors import (
    ExportFilters,
    answers_for_export,
    candidates_for_export,
    export_summary,
    items_for_export,
)
from exports.writers import WITH_OUTPUTS, jsonl_chunks
from projects.models import Project

DATA_FILE = "data.jsonl"
PROJECT_FILE = "project.json"
CARD_FILE = "README.md"
ARCHIVE_FORMAT = "tunelab-dataset"
ARCHIVE_VERSION = 1
_COPY_BLOCK = 1 << 20
# Deflate's fastest level: JSONL still shrinks several times, at a fraction of the CPU.
_COMPRESS_LEVEL = 1


class _Sink(io.RawIOBase):
    """A write-only stream that keeps what is written until `take` hands it on."""

    def __init__(self) -> None:
        super().__init__()
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def _member(path: str, compress: bool) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(path, date_time=datetime.now(UTC).timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


def _stored(name: str) -> io.IOBase | None:
    """The stored file `name`, open; None when it is gone from storage (the card counts
    those)."""
    try:
        return default_storage.open(name, "rb")
    except OSError:
        return None


def _files(project: Project, filters: ExportFilters, refs: ArchiveRefs
           ) -> Iterator[tuple[str, str]]:
    """(archive path, stored name) of every file the rows refer to, each once."""
    for item_id, file_name, name in items_for_export(project=project, filters=filters).iterator():
        if (path := refs.image(item_id, file_name, name)) is not None:
            yield path, name
    for candidate_id, output in (candidates_for_export(project=project, filters=filters)
                                 .iterator() if project.task in FILE_KEYS else ()):
        for stored, key in FILE_KEYS[project.task]:
            url = output.get(stored) if isinstance(output, dict) else None
            if (name := refs.stored_name(url)) is not None:
                yield refs.output(candidate_id, key, url), name


def _project_json(project: Project, filters: ExportFilters, rows: int) -> str:
    return json.dumps({
        "format": ARCHIVE_FORMAT, "version": ARCHIVE_VERSION,
        "project": project.name, "task": project.task, "rating_mode": project.rating_mode,
        "ranking_k": project.ranking_k, "categories": project.categories,
        "licence": project.licence, "filters": filters.described(), "rows": rows,
        "exported_at": datetime.now(UTC).isoformat(),
    }, indent=2, ensure_ascii=False) + "\n"


def dataset_archive_chunks(*, project: Project, filters: ExportFilters) -> Iterator[bytes]:
    """The archive's bytes, a chunk at a time (see the module docstring)."""
    sink = _Sink()
    refs = ArchiveRefs(project)
    rows = missing = files = 0
    with zipfile.ZipFile(sink, "w", compresslevel=_COMPRESS_LEVEL) as archive:
        with archive.open(_member(DATA_FILE, compress=True), "w", force_zip64=True) as data:
            answers = answers_for_export(project=project, filters=filters,
                                         outputs=OutputForms(project, refs))
            for chunk in jsonl_chunks(answers, WITH_OUTPUTS):
                data.write(chunk)
                rows += chunk.count(b"\n")
                yield sink.take()
        for path, name in _files(project, filters, refs):
            if (source := _stored(name)) is None:
                missing += 1
                continue
            files += 1
            with source, archive.open(_member(path, compress=False), "w",
                                      force_zip64=True) as member:
                while block := source.read(_COPY_BLOCK):
                    member.write(block)
                    yield sink.take()
        archive.writestr(_member(PROJECT_FILE, compress=True),
                         _project_json(project, filters, rows))
        summary = export_summary(project=project, filters=filters)
        archive.writestr(_member(CARD_FILE, compress=True),
                         dataset_card(project=project, filters=filters, summary=summary,
                                      files=files, missing=missing))
    yield sink.take()
