"""Checking an import before anything is written.

Every image is decoded, every JSON record checked, every reference resolved (file names to the
uploaded images or the project's items, image ids to a COCO file's images, category ids to the
categories), and all problems are collected by file. The result is an `ImportPlan`: what to
write, with files (colorized images, panoptic PNGs and their overlays) as writers that store
them only when the import service calls them, inside its transaction.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from ingest import formats, panoptic
from ingest.checks import Checker, Problems
from ingest.sources import FileSet, JsonFile, image_size
from projects.models import Item, ModelVersion, Project, VisionTask

# Stores bytes at a path under the project's media folder and returns the file's URL.
Store = Callable[[str, bytes], str]
# Stores an output's files in a folder (with a Store) and returns the JSON that refers to them.
FileWriter = Callable[[str, Store], dict]

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


@dataclass(frozen=True)
class _Target:
    """An image an annotation can refer to: uploaded now, or an item of the project."""

    width: int
    height: int


@dataclass
class ImportPlan:
    """Everything checked and ready to write; names are item file names."""

    model_version: str | None = None
    new_images: list[str] = field(default_factory=list)
    ground_truth: dict[str, dict | FileWriter] = field(default_factory=dict)
    outputs: dict[str, dict] = field(default_factory=dict)
    file_outputs: dict[str, FileWriter] = field(default_factory=dict)
    # Categories for a project that has none yet, from the files' own.
    new_categories: dict[int, str] = field(default_factory=dict)


class _Planner:
    def __init__(self, project: Project, files: ImportFiles, model_version: str | None) -> None:
        self.project = project
        self.files = files
        self.model_version = model_version
        self.problems = Problems()
        self.plan = ImportPlan(model_version=model_version)
        self.targets: dict[str, _Target] = {
            name: _Target(width, height)
            for name, width, height in Item.objects.filter(project=project)
            .values_list("file_name", "width", "height")
        }
        self.categories = {c["id"]: c["name"] for c in project.categories
                           if isinstance(c, dict) and "id" in c and "name" in c}
        self.new_categories = self.plan.new_categories
        self.unreadable: set[str] = set()  # images reported already; references stay quiet

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

    def _size_of(self, file_name: str) -> tuple[int, int] | None:
        target = self.targets.get(file_name)
        return None if target is None else (target.width, target.height)

    def _names(self, annotated: formats.Annotated) -> dict[int, str]:
        return {image_id: image.file_name for image_id, image in annotated.images.items()}

    def _check_detection(self) -> None:
        instances = self.files.instances
        checker = Checker(self.problems, instances.name)
        parsed = formats.parse_instances(checker, instances.data, self._size_of)
        self._resolve(checker, parsed.images)
        self._merge_categories(checker, parsed.categories)
        names = self._names(parsed)
        for image_id, name in names.items():
            self.plan.ground_truth[name] = {"objects": parsed.by_image.get(image_id, [])}
        if self.files.results:
            results = self.files.results
            by_image = formats.parse_detection_results(
                Checker(self.problems, results.name), results.data, parsed.images,
                instances.name, set(self.categories) | set(self.new_categories), self._size_of,
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
            self.plan.file_outputs[name] = _colorized_writer(colorized, name)

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
            writer = _panoptic_writer(pngs, annotation)
            if self.model_version:
                self.plan.file_outputs[image.file_name] = writer
            else:
                self.plan.ground_truth[image.file_name] = writer


def _colorized_writer(colorized: FileSet, name: str) -> FileWriter:
    def write(folder: str, store: Store) -> dict:
        return {"image_url": store(f"{folder}/{name}", colorized.read(name))}

    return write


def _panoptic_writer(pngs: FileSet, annotation: formats.PanopticAnnotation) -> FileWriter:
    """The PNG as it came, and the overlay the annotator UI draws over the image."""
    def write(folder: str, store: Store) -> dict:
        data = pngs.read(annotation.png)
        stem = PurePosixPath(annotation.png).with_suffix("")
        overlay = panoptic.overlay_png(panoptic.segment_ids(data))
        return {
            "png_url": store(f"{folder}/{stem}.png", data),
            "overlay_url": store(f"{folder}/{stem}_overlay.png", overlay),
            "segments": annotation.segments,
        }

    return write


def import_plan(
    *, project: Project, files: ImportFiles, model_version: str | None = None
) -> tuple[ImportPlan, Problems]:
    """Check everything the import would write; the plan is only to be written when there
    are no problems."""
    planner = _Planner(project, files, model_version)
    planner.check()
    return planner.plan, planner.problems
