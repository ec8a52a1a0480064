"""The import: images, ground truth and model outputs into a project, all or nothing.

`dataset_import` first reads and checks everything (every image decoded, every JSON record
checked, every reference resolved) and reports all problems at once, by file; only then does it
write, in one transaction. Files it stored under MEDIA_ROOT are deleted again if the transaction
fails, so a failed import leaves nothing behind.

What lands where (docs/api.md has the candidate outputs):
- images -> Items (`file_name` is the name in the folder or archive);
- ground truth -> `Item.ground_truth`: detection `{"objects": [{"bbox", "category_id"}]}`,
  captioning `{"captions": [...]}`, panoptic `{"png_url", "overlay_url", "segments"}`;
- model outputs -> a new ModelVersion and one Candidate per image, then the queue's tasks
  (`labeling.services.tasks_create`). Detection: every image of the instances file gets a
  candidate (an image without results has no objects, as in COCO evaluation).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from common.errors import ApplicationError
from ingest import formats, panoptic
from ingest.checks import Checker, Problems
from ingest.sources import FileSet, JsonFile, image_size
from labeling.services import tasks_create
from projects.models import Item, ModelVersion, Project, VisionTask
from projects.services import candidate_create, item_create, model_version_get_or_create

# Which inputs each kind of project takes.
_INPUTS_FOR_TASK = {
    VisionTask.DETECTION: {"instances", "results"},
    VisionTask.CAPTIONING: {"captions", "results"},
    VisionTask.COLORIZATION: {"colorized"},
    VisionTask.PANOPTIC: {"panoptic_json", "panoptic_pngs"},
}


@dataclass
class ImportFiles:
    """What to import; every part is optional, but something must be given."""

    images: FileSet | None = None
    instances: JsonFile | None = None
    results: JsonFile | None = None
    captions: JsonFile | None = None
    colorized: FileSet | None = None
    panoptic_json: JsonFile | None = None
    panoptic_pngs: FileSet | None = None

    def given(self) -> set[str]:
        return {name for name, value in vars(self).items() if value is not None}


@dataclass
class ImportSummary:
    items_created: int = 0
    ground_truth_set: int = 0
    model_version: str | None = None
    candidates_created: int = 0
    tasks_created: int = 0


@dataclass(frozen=True)
class _Target:
    """An image an annotation can refer to: uploaded now, or an item of the project."""

    width: int
    height: int
    item_id: int | None = None


@dataclass
class _Plan:
    """Everything checked and ready to write."""

    new_images: list[str] = field(default_factory=list)
    # By item file name. Values that are files come as writers, called inside the transaction
    # with the folder to store in; they return the JSON that refers to the stored files.
    ground_truth: dict[str, dict | Callable[[str], dict]] = field(default_factory=dict)
    outputs: dict[str, dict] = field(default_factory=dict)
    file_outputs: dict[str, Callable[[str], dict]] = field(default_factory=dict)


class _Importer:
    def __init__(self, project: Project, files: ImportFiles, model_version: str | None) -> None:
        self.project = project
        self.files = files
        self.model_version = model_version
        self.problems = Problems()
        self.plan = _Plan()
        self.targets: dict[str, _Target] = {
            name: _Target(width, height, pk)
            for pk, name, width, height in Item.objects.filter(project=project)
            .values_list("id", "file_name", "width", "height")
        }
        self.categories = {c["id"]: c["name"] for c in project.categories
                           if isinstance(c, dict) and "id" in c and "name" in c}
        self.new_categories: dict[int, str] = {}
        self.unreadable: set[str] = set()  # images reported already; references stay quiet
        self.stored: list[str] = []  # files written under MEDIA_ROOT, deleted on failure

    # --- checking -------------------------------------------------------------------------

    def check(self) -> None:
        self._check_arguments()
        for file_set in (self.files.images, self.files.colorized, self.files.panoptic_pngs):
            for problem in file_set.problems if file_set else ():
                self.problems.add(file_set.label, problem)
        if self.problems:
            return  # the arguments are wrong: checking the files would mislead
        if self.files.images:
            self._check_images(self.files.images)
        if self.files.instances:
            self._check_detection()
        if self.files.captions:
            self._check_captioning()
        if self.files.colorized:
            self._check_colorized(self.files.colorized)
        if self.files.panoptic_json and self.files.panoptic_pngs:
            self._check_panoptic(self.files.panoptic_json, self.files.panoptic_pngs)

    def _check_arguments(self) -> None:
        given = self.files.given()
        task = self.project.task
        if not given:
            self.problems.add("images", "Nothing to import: give images, annotations or outputs.")
        for name in sorted(given - {"images"} - _INPUTS_FOR_TASK[task]):
            self.problems.add(name, f"Not used by a {task} project.")
        outputs = given & {"results", "colorized"} or (
            {"panoptic_json"} if self.model_version else set()
        )
        if outputs and not self.model_version:
            self.problems.add("model_version", "Model outputs need the model version's name.")
        if self.model_version is not None:
            if not self.model_version.strip():
                self.problems.add("model_version", "The model version's name is empty.")
            elif not outputs:
                self.problems.add("model_version", "A model version needs outputs to import.")
            elif ModelVersion.objects.filter(project=self.project,
                                             name=self.model_version).exists():
                self.problems.add("model_version",
                                  f"{self.model_version!r} exists in this project; outputs of "
                                  "a new version need a new name.")
        if "results" in given and not given & {"instances", "captions"}:
            self.problems.add("results", "COCO results name images by id: give the instances "
                                         "(detection) or captions file they refer to.")
        if len(given & {"panoptic_json", "panoptic_pngs"}) == 1:
            self.problems.add("panoptic_json", "Panoptic annotations need both the JSON file "
                                               "and its PNGs.")

    def _check_images(self, images: FileSet) -> None:
        for name in images.names():
            if name in self.targets:
                self.problems.add(images.label, f"{name}: an item of this name exists in the "
                                                "project.")
                continue
            try:
                width, height = image_size(images.read(name))
            except ValueError as error:
                self.problems.add(images.label, f"{name}: {error}.")
                self.unreadable.add(name)
                continue
            self.targets[name] = _Target(width, height)
            self.plan.new_images.append(name)

    def _resolve(self, checker: Checker, images: dict[int, formats.CocoImage]) -> None:
        """Every image of a COCO file is an uploaded image or an item, of the same size."""
        for image in images.values():
            target = self.targets.get(image.file_name)
            if target is None:
                if image.file_name not in self.unreadable:
                    checker.fail(f"{image.path}.file_name",
                                 f"{image.file_name!r} is neither an uploaded image nor an item "
                                 "of the project.")
                continue
            for key, said, actual in (("width", image.width, target.width),
                                      ("height", image.height, target.height)):
                if said is not None and said != actual:
                    checker.fail(f"{image.path}.{key}",
                                 f"{said}, but {image.file_name} is {actual} pixels.")

    def _merge_categories(self, checker: Checker, categories: dict[int, str]) -> None:
        """The file's categories must be the project's, or become them when it has none."""
        for category_id, name in categories.items():
            known = self.categories.get(category_id, self.new_categories.get(category_id))
            if known is None and self.categories:
                checker.fail("categories", f"category {category_id} ({name!r}) is not one of "
                                           f"the project's: {sorted(self.categories)}.")
            elif known is not None and known != name:
                checker.fail("categories", f"category {category_id} is {name!r} here but "
                                           f"{known!r} in the project.")
            elif known is None:
                self.new_categories[category_id] = name

    def _names(self, annotated: formats.Annotated) -> dict[int, str]:
        return {image_id: image.file_name for image_id, image in annotated.images.items()}

    def _check_detection(self) -> None:
        instances = self.files.instances
        checker = Checker(self.problems, instances.name)
        parsed = formats.parse_instances(checker, instances.data)
        self._resolve(checker, parsed.images)
        self._merge_categories(checker, parsed.categories)
        names = self._names(parsed)
        for image_id, name in names.items():
            self.plan.ground_truth[name] = {"objects": parsed.by_image.get(image_id, [])}
        if self.files.results:
            results = self.files.results
            by_image = formats.parse_detection_results(
                Checker(self.problems, results.name), results.data, parsed.images,
                instances.name, set(self.categories) | set(self.new_categories),
            )
            for image_id, name in names.items():
                self.plan.outputs[name] = {"objects": by_image.get(image_id, [])}

    def _check_captioning(self) -> None:
        captions = self.files.captions
        checker = Checker(self.problems, captions.name)
        parsed = formats.parse_captions(checker, captions.data)
        self._resolve(checker, parsed.images)
        names = self._names(parsed)
        for image_id, texts in parsed.by_image.items():
            self.plan.ground_truth[names[image_id]] = {"captions": texts}
        if self.files.results:
            results = self.files.results
            by_image = formats.parse_caption_results(
                Checker(self.problems, results.name), results.data, parsed.images, captions.name
            )
            for image_id, caption in by_image.items():
                self.plan.outputs[names[image_id]] = {"caption": caption}

    def _check_colorized(self, colorized: FileSet) -> None:
        for name in colorized.names():
            if name not in self.targets:
                self.problems.add(colorized.label, f"{name}: no uploaded image or item has "
                                                   "this name.")
                continue
            try:
                image_size(colorized.read(name))
            except ValueError as error:
                self.problems.add(colorized.label, f"{name}: {error}.")
                continue
            self.plan.file_outputs[name] = self._colorized_writer(colorized, name)

    def _check_panoptic(self, document: JsonFile, pngs: FileSet) -> None:
        checker = Checker(self.problems, document.name)
        parsed = formats.parse_panoptic(checker, document.data)
        self._resolve(checker, parsed.images)
        self._merge_categories(checker, parsed.categories)
        available = set(pngs.names())
        for image_id, (annotation,) in parsed.by_image.items():
            image = parsed.images[image_id]
            target = self.targets.get(image.file_name)
            if annotation.png not in available:
                checker.fail(f"{annotation.path}.file_name",
                             f"{annotation.png!r} is not among the PNGs ({pngs.label}).")
                continue
            if target is None:
                continue
            try:
                ids = panoptic.segment_ids(pngs.read(annotation.png))
            except ValueError as error:
                self.problems.add(pngs.label, f"{annotation.png}: {error}.")
                continue
            if ids.shape != (target.height, target.width):
                self.problems.add(pngs.label, f"{annotation.png}: {ids.shape[1]}x{ids.shape[0]}"
                                              f" pixels, but {image.file_name} is "
                                              f"{target.width}x{target.height}.")
                continue
            in_png = {int(i) for i in set(ids.ravel().tolist())} - {0}
            listed = {segment["id"] for segment in annotation.segments}
            if in_png - listed:
                self.problems.add(pngs.label, f"{annotation.png}: segment ids "
                                              f"{sorted(in_png - listed)[:10]} are not in "
                                              f"{annotation.path}.segments_info.")
            if listed - in_png:
                checker.fail(f"{annotation.path}.segments_info",
                             f"segment ids {sorted(listed - in_png)[:10]} do not appear in "
                             f"{annotation.png}.")
            writer = self._panoptic_writer(pngs, annotation)
            if self.model_version:
                self.plan.file_outputs[image.file_name] = writer
            else:
                self.plan.ground_truth[image.file_name] = writer

    # --- writing ------------------------------------------------------------------------------

    def _colorized_writer(self, colorized: FileSet, name: str) -> Callable[[str], dict]:
        def write(folder: str) -> dict:
            stored = self._store(f"{folder}/{name}", colorized.read(name))
            return {"image_url": default_storage.url(stored)}

        return write

    def _panoptic_writer(self, pngs: FileSet, annotation: formats.PanopticAnnotation
                         ) -> Callable[[str], dict]:
        """Stores the PNG and its overlay when called: inside the transaction, never before."""
        def write(folder: str) -> dict:
            data = pngs.read(annotation.png)
            stem = PurePosixPath(annotation.png).with_suffix("")
            overlay = panoptic.overlay_png(panoptic.segment_ids(data))
            return {
                "png_url": default_storage.url(self._store(f"{folder}/{stem}.png", data)),
                "overlay_url": default_storage.url(
                    self._store(f"{folder}/{stem}_overlay.png", overlay)
                ),
                "segments": annotation.segments,
            }

        return write

    def _store(self, relative: str, data: bytes) -> str:
        stored = default_storage.save(f"projects/{self.project.pk}/{relative}",
                                      ContentFile(data))
        self.stored.append(stored)
        return stored

    def _items_named(self, names: set[str]) -> dict[str, Item]:
        """The project's items with these names, in batches (SQLite caps query parameters)."""
        ordered = sorted(names)
        return {
            item.file_name: item
            for start in range(0, len(ordered), 500)
            for item in Item.objects.filter(project=self.project,
                                            file_name__in=ordered[start:start + 500])
        }

    def write(self) -> ImportSummary:
        summary = ImportSummary()
        plan, files = self.plan, self.files
        try:
            with transaction.atomic():
                if self.new_categories:
                    # Only a project without categories gets new ones (checked above).
                    self.project.categories = [
                        {"id": i, "name": n} for i, n in sorted(self.new_categories.items())
                    ]
                    self.project.save(update_fields=["categories"])
                ground_truth = {
                    name: value("ground_truth") if callable(value) else value
                    for name, value in plan.ground_truth.items()
                }
                items: dict[str, Item] = {}
                for name in plan.new_images:
                    item = item_create(project=self.project, file_name=name,
                                       image=files.images.read(name),
                                       ground_truth=ground_truth.pop(name, None))
                    self.stored.append(item.image.name)
                    items[name] = item
                    summary.items_created += 1
                existing = self._items_named(
                    (set(ground_truth) | set(plan.outputs) | set(plan.file_outputs)) - set(items)
                )
                for name, value in ground_truth.items():
                    existing[name].ground_truth = value
                Item.objects.bulk_update([existing[name] for name in ground_truth],
                                         ["ground_truth"], batch_size=500)
                summary.ground_truth_set = len(ground_truth) + sum(
                    item.ground_truth is not None for item in items.values()
                )
                items |= existing
                if plan.outputs or plan.file_outputs:
                    version = model_version_get_or_create(project=self.project,
                                                          name=self.model_version)
                    summary.model_version = version.name
                    folder = f"outputs/{version.pk}"
                    outputs = plan.outputs | {name: write(folder)
                                              for name, write in plan.file_outputs.items()}
                    for name, output in outputs.items():
                        candidate_create(item=items[name], model_version=version, output=output)
                    summary.candidates_created = len(outputs)
                    summary.tasks_created = tasks_create(project=self.project)
        except BaseException:
            for name in self.stored:
                default_storage.delete(name)
            raise
        return summary


def dataset_import(
    *, project: Project, files: ImportFiles, model_version: str | None = None
) -> ImportSummary:
    """Import images, ground truth and model outputs into `project`, all or nothing.

    Raises ApplicationError with `errors` by file name (or argument name) listing every
    problem, and imports nothing, when anything is wrong.
    """
    importer = _Importer(project, files, model_version)
    importer.check()
    if importer.problems:
        raise ApplicationError(importer.problems.summary(), errors=importer.problems.by_file)
    return importer.write()
