"""`python manage.py import_data`: the import from files on disk (see ingest.services).

    python manage.py import_data --project NAME --images DIR_OR_ZIP [--instances FILE]
        [--results FILE --model-version NAME] [--captions FILE] [--colorized DIR_OR_ZIP]
        [--panoptic-json FILE --panoptic-dir DIR_OR_ZIP]
    python manage.py import_data --project NAME --dataset ZIP
"""

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from common.errors import ApplicationError
from ingest.dataset_archive import ArchiveFiles
from ingest.planning import ImportFiles
from ingest.services import ImportSummary, dataset_archive_import, dataset_import
from ingest.sources import MAX_JSON_BYTES, PNG_SUFFIXES, JsonFile, file_set_from_path
from projects.models import Project


def _existing(path: str | None, option: str, *, folder_or_zip: bool = False) -> Path | None:
    if path is None:
        return None
    resolved = Path(path).expanduser()
    if not resolved.exists():
        raise CommandError(f"{option}: {path} does not exist.")
    if folder_or_zip and not (resolved.is_dir() or resolved.suffix.lower() == ".zip"):
        raise CommandError(f"{option}: {path} is neither a folder nor a .zip file.")
    if not folder_or_zip and not resolved.is_file():
        raise CommandError(f"{option}: {path} is not a file.")
    return resolved


def _json(path: str | None, option: str) -> JsonFile | None:
    resolved = _existing(path, option)
    if resolved is None:
        return None
    if resolved.stat().st_size > MAX_JSON_BYTES:
        raise CommandError(f"{option}: {path} is over {MAX_JSON_BYTES:,} bytes.")
    return JsonFile(resolved.name, resolved.read_bytes())


class Command(BaseCommand):
    help = ("Import images, ground truth and model outputs into a project: checked first, "
            "then all or nothing.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="The project's name.")
        parser.add_argument("--images", help="A folder or .zip of images.")
        parser.add_argument("--instances", help="COCO instances JSON (detection ground truth).")
        parser.add_argument("--results", help="COCO results JSON (detection or captions).")
        parser.add_argument("--model-version", help="Name of the model the outputs came from.")
        parser.add_argument("--captions", help="COCO captions JSON (captioning ground truth).")
        parser.add_argument("--colorized", help="A folder or .zip of colorized images, named "
                                                "like the items.")
        parser.add_argument("--panoptic-json", help="COCO panoptic JSON.")
        parser.add_argument("--panoptic-dir", help="A folder or .zip of the panoptic PNGs.")
        parser.add_argument("--dataset", help="A dataset archive (.zip of the export's "
                                              "format=dataset), alone, into an empty project.")

    def handle(self, *args: object, **options: str | None) -> None:
        project = Project.objects.filter(name=options["project"]).first()
        if project is None:
            raise CommandError(f"--project: no project named {options['project']!r}.")
        if options["dataset"]:
            self._report(lambda: dataset_archive_import(
                project=project, archive=self._archive(options)))
            return
        images = _existing(options["images"], "--images", folder_or_zip=True)
        colorized = _existing(options["colorized"], "--colorized", folder_or_zip=True)
        pngs = _existing(options["panoptic_dir"], "--panoptic-dir", folder_or_zip=True)
        files = ImportFiles(
            images=file_set_from_path(images) if images else None,
            instances=_json(options["instances"], "--instances"),
            results=_json(options["results"], "--results"),
            captions=_json(options["captions"], "--captions"),
            colorized=file_set_from_path(colorized) if colorized else None,
            panoptic_json=_json(options["panoptic_json"], "--panoptic-json"),
            panoptic_pngs=file_set_from_path(pngs, PNG_SUFFIXES) if pngs else None,
        )
        self._report(lambda: dataset_import(project=project, files=files,
                                            model_version=options["model_version"]))

    def _archive(self, options: dict) -> ArchiveFiles:
        others = [f"--{name.replace('_', '-')}" for name in (
            "images", "instances", "results", "model_version", "captions", "colorized",
            "panoptic_json", "panoptic_dir") if options[name]]
        if others:
            raise CommandError(f"--dataset: an archive is imported alone; drop "
                               f"{', '.join(others)}.")
        path = _existing(options["dataset"], "--dataset")
        return ArchiveFiles(path.name, path)

    def _report(self, run: Callable[[], ImportSummary]) -> None:
        try:
            summary = run()
        except ApplicationError as error:
            lines = [f"{file}: {message}" for file, messages in error.errors.items()
                     for message in messages]
            raise CommandError("\n".join([error.message, *lines])) from None
        self.stdout.write(", ".join(f"{key.replace('_', ' ')}: {value}"
                                    for key, value in asdict(summary).items()))
