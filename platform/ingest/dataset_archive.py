"""Checking a dataset archive (the export's `format=dataset`) before it is imported.

An archive goes into a new, empty project of its task and rating mode: its items (images), the
candidates its rows show (outputs, with their model versions' names) and its answers, which
become imported feedback (`Answer.imported_annotator`). Every row of data.jsonl is checked,
every path resolved to a member of the archive, every image decoded, and the rows are checked
against each other (one candidate has one output, one set of candidates one screen order, an
annotator answers it once); problems are collected by file and line (`data.jsonl`:
`line 3: score: ...`), as in every import, and nothing is written while there is one.
"""

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils.dateparse import parse_datetime

from common.errors import ApplicationError
from exports.archive import ARCHIVE_FORMAT, ARCHIVE_VERSION, DATA_FILE, PROJECT_FILE
from ingest import panoptic
from ingest.checks import Checker, Problems
from ingest.sources import IMAGE_SUFFIXES, MAX_JSON_BYTES, PNG_SUFFIXES, ZipFileSet, image_size
from labeling.answer_input import ANSWER_FIELDS, MAX_TIME_SPENT_MS, answer_parse
from projects.models import Item, Project, RatingMode, VisionTask

ARCHIVE_SUFFIXES = (*IMAGE_SUFFIXES, ".jsonl", ".json", ".md")


class ArchiveFiles(ZipFileSet):
    """The members of a dataset archive; data.jsonl and project.json may be as large as any
    JSON document the import takes."""

    def __init__(self, label: str, file: Any) -> None:
        super().__init__(label, file, ARCHIVE_SUFFIXES)

    def max_bytes(self, name: str) -> int:
        return MAX_JSON_BYTES if name in (DATA_FILE, PROJECT_FILE) else super().max_bytes(name)


@dataclass(frozen=True)
class ArchiveItem:
    file_name: str
    image: str  # its member
    width: int
    height: int


@dataclass(frozen=True)
class ArchiveCandidate:
    item: int  # the archive's item id
    model_version: str
    output: dict  # the stored form (docs/api.md), with members in place of file URLs
    line: int


@dataclass(frozen=True)
class ArchiveAnswer:
    candidates: tuple[int, ...]  # the archive's candidate ids, in screen order
    score: int | None
    choice: str | None
    ranking: list[int] | None  # the archive's candidate ids, best first
    annotator: str
    time_spent_ms: int
    created_at: datetime


@dataclass
class ArchivePlan:
    new_categories: list[dict] = field(default_factory=list)
    items: dict[int, ArchiveItem] = field(default_factory=dict)
    candidates: dict[int, ArchiveCandidate] = field(default_factory=dict)
    answers: list[ArchiveAnswer] = field(default_factory=list)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


class _ArchivePlanner:
    def __init__(self, project: Project, archive: ArchiveFiles) -> None:
        self.project = project
        self.archive = archive
        self.members = set(archive.names())
        self.problems = Problems()
        self.plan = ArchivePlan()
        self.rows = Checker(self.problems, DATA_FILE)
        self.categories: dict[int, str] = {}
        self.sizes: dict[str, tuple[int, int] | None] = {}  # members decoded so far
        self.names: dict[str, int] = {}  # file name -> item id
        self.canonical: dict[int, str] = {}  # candidate id -> its row's output, as text
        self.orders: dict[tuple[int, ...], tuple[tuple[int, ...], int]] = {}
        self.answered: dict[tuple[str, tuple[int, ...]], int] = {}

    def check(self) -> None:
        for problem in self.archive.problems:
            self.problems.add(self.archive.label, problem)
        if Item.objects.filter(project=self.project).exists():
            self.problems.add("dataset", "The project has items: a dataset archive goes into "
                                         "a new, empty project.")
        for name in (PROJECT_FILE, DATA_FILE):
            if name not in self.members:
                self.problems.add(self.archive.label, f"{name} is missing: not a dataset "
                                                      "archive of Tunelab's export.")
        if self.problems:
            return
        self._check_project()
        if self.problems:
            return  # rows of another task or mode would only repeat that
        try:
            data = self.archive.read(DATA_FILE)
        except ValueError as error:
            self.problems.add(DATA_FILE, f"{error}.")
            return
        for number, line in enumerate(data.splitlines(), start=1):
            if line.strip():
                self._row(number, line)

    # --- project.json -----------------------------------------------------------------------

    def _check_project(self) -> None:
        checker = Checker(self.problems, PROJECT_FILE)
        try:
            document = checker.mapping(checker.load(self.archive.read(PROJECT_FILE)), "")
        except ValueError as error:
            checker.fail("", f"{error}.")
            return
        if document is None:
            return
        if (document.get("format"), document.get("version")) != (ARCHIVE_FORMAT,
                                                                 ARCHIVE_VERSION):
            checker.fail("format", f"expected {ARCHIVE_FORMAT!r} version {ARCHIVE_VERSION}, "
                                   f"got {document.get('format')!r} version "
                                   f"{document.get('version')!r}.")
            return
        for key in ("task", "rating_mode"):
            value, own = document.get(key), getattr(self.project, key)
            if value != own:
                checker.fail(key, f"the archive's is {value!r}, the project's {own!r}.")
        categories: dict[int, str] = {}
        for path, record in checker.records(document, "categories"):
            category_id = checker.integer(checker.field(record, "id", path), f"{path}.id")
            name = checker.text(checker.field(record, "name", path), f"{path}.name")
            if category_id is not None and name is not None:
                categories[category_id] = name
        own = {c["id"]: c["name"] for c in self.project.categories
               if isinstance(c, dict) and "id" in c and "name" in c}
        if own and own != categories:
            checker.fail("categories", f"{categories} differ from the project's: {own}.")
        elif not own:
            self.plan.new_categories = [{"id": i, "name": n} for i, n in
                                        sorted(categories.items())]
        self.categories = categories

    # --- data.jsonl -------------------------------------------------------------------------

    def _row(self, number: int, line: bytes) -> None:
        rows, at = self.rows, f"line {number}"
        try:
            row = json.loads(line)
        except (ValueError, RecursionError) as error:
            rows.fail(at, f"not valid JSON ({error}).")
            return
        if rows.mapping(row, at) is None:
            return
        mode = self.project.rating_mode
        kind = rows.field(row, "kind", at)
        expected = "rating" if mode == RatingMode.SCALE else "comparison"
        if kind is not None and kind != expected:
            rows.fail(f"{at}: kind", f"expected {expected!r} ({mode} project), got {kind!r}.")
            return
        item_id = rows.integer(rows.field(row, "item", at), f"{at}: item")
        file_name = rows.text(rows.field(row, "file_name", at), f"{at}: file_name")
        image = rows.text(rows.field(row, "image", at), f"{at}: image")
        shown = self._shown(row, at)
        answer = self._answer(row, at, shown)
        annotator = rows.text(rows.field(row, "annotator", at), f"{at}: annotator")
        spent = rows.integer(rows.field(row, "time_spent_ms", at), f"{at}: time_spent_ms")
        if spent is not None and not 0 <= spent <= MAX_TIME_SPENT_MS:
            rows.fail(f"{at}: time_spent_ms",
                      f"expected 0 to {MAX_TIME_SPENT_MS}, got {spent}.")
            spent = None
        created = self._moment(row, at)
        if None in (item_id, file_name, image, shown, answer, annotator, spent, created):
            return
        item = self._item(at, item_id, file_name, image)
        if item is None:
            return
        candidates = shown[0]
        ok = [self._candidate(f"{at}: outputs[{index}]", number, candidate, item_id, item,
                              version, output)
              for index, (candidate, version, output) in enumerate(zip(*shown, strict=True))]
        if not all(ok):
            return
        key = tuple(sorted(candidates))
        order, first = self.orders.setdefault(key, (tuple(candidates), number))
        if order != tuple(candidates):
            rows.fail(f"{at}: candidates",
                      f"the candidates of line {first} in another order.")
            return
        earlier = self.answered.setdefault((annotator, key), number)
        if earlier != number:
            rows.fail(f"{at}: annotator", f"{annotator!r} answered these candidates on line "
                                        f"{earlier} already.")
            return
        self.plan.answers.append(ArchiveAnswer(
            candidates=tuple(candidates), score=answer.score, choice=answer.choice,
            ranking=answer.ranking, annotator=annotator, time_spent_ms=spent,
            created_at=created,
        ))

    def _shown(self, row: dict, at: str) -> tuple[list, list, list] | None:
        """The row's candidates, their versions and outputs, lists of one length."""
        rows = self.rows
        lists = [rows.array(rows.field(row, key, at), f"{at}: {key}")
                 for key in ("candidates", "model_versions", "outputs")]
        if None in lists:
            return None
        candidates, versions, outputs = lists
        ids = [rows.integer(value, f"{at}: candidates[{i}]")
               for i, value in enumerate(candidates)]
        names = [rows.text(value, f"{at}: model_versions[{i}]")
                 for i, value in enumerate(versions)]
        if None in ids or None in names:
            return None
        mode, k = self.project.rating_mode, self.project.ranking_k
        low, high = {RatingMode.SCALE: (1, 1), RatingMode.PAIRWISE: (2, 2)}.get(mode, (2, k))
        if not low <= len(ids) <= high or len(set(ids)) != len(ids):
            rows.fail(f"{at}: candidates", f"a {mode} task shows {low} to {high} different "
                                         f"candidates, got {ids}.")
            return None
        if not len(ids) == len(names) == len(outputs):
            rows.fail(f"{at}: outputs", f"{len(ids)} candidates, {len(names)} model versions "
                                      f"and {len(outputs)} outputs.")
            return None
        return ids, names, outputs

    def _answer(self, row: dict, at: str, shown: tuple | None) -> Any:
        name, _ = ANSWER_FIELDS[RatingMode(self.project.rating_mode)]
        value = self.rows.field(row, name, at)
        if value is None or shown is None:
            return None
        try:
            return answer_parse({name: value}, rating_mode=self.project.rating_mode,
                                shown=sorted(shown[0]))
        except ApplicationError as error:
            self.rows.fail(f"{at}: {name}", error.message)
            return None

    def _moment(self, row: dict, at: str) -> datetime | None:
        text = self.rows.text(self.rows.field(row, "created_at", at), f"{at}: created_at")
        try:
            moment = parse_datetime(text) if text else None
        except ValueError:
            moment = None
        if text and (moment is None or moment.tzinfo is None):
            self.rows.fail(f"{at}: created_at",
                           f"expected an ISO 8601 date-time with its zone, got {text!r}.")
            return None
        return moment

    def _size(self, path: str, member: str, suffixes: tuple[str, ...] = IMAGE_SUFFIXES
              ) -> tuple[int, int] | None:
        """The width and height of the image `member`, decoded once; None (and a problem the
        first time) when it is not a readable image of the archive."""
        if member in self.sizes:
            return self.sizes[member]
        size = None
        if member not in self.members or not member.lower().endswith(suffixes):
            self.rows.fail(path, f"{member!r} is not an image of the archive.")
        else:
            try:
                size = image_size(self.archive.read(member))
            except ValueError as error:
                self.problems.add(self.archive.label, f"{member}: {error}.")
        self.sizes[member] = size
        return size

    def _item(self, at: str, item_id: int, file_name: str, image: str) -> ArchiveItem | None:
        known = self.plan.items.get(item_id)
        if known is not None:
            if (known.file_name, known.image) != (file_name, image):
                self.rows.fail(f"{at}: item", f"item {item_id} is {known.file_name!r} "
                                            f"({known.image}) on an earlier line.")
                return None
            return known
        if self.names.setdefault(file_name, item_id) != item_id:
            self.rows.fail(f"{at}: file_name",
                           f"{file_name!r} is item {self.names[file_name]} on an earlier line.")
            return None
        size = self._size(f"{at}: image", image)
        if size is None:
            return None
        item = ArchiveItem(file_name, image, *size)
        self.plan.items[item_id] = item
        return item

    def _candidate(self, at: str, number: int, candidate_id: int, item_id: int,
                   item: ArchiveItem, version: str, output: Any) -> bool:
        known = self.plan.candidates.get(candidate_id)
        if known is not None:
            if ((known.item, known.model_version, self.canonical[candidate_id])
                    != (item_id, version, _canonical(output))):
                self.rows.fail(at, f"candidate {candidate_id} has another item, model version "
                                   f"or output on line {known.line}.")
                return False
            return True
        stored = self._output(at, output, item)
        if stored is None:
            return False
        self.plan.candidates[candidate_id] = ArchiveCandidate(item_id, version, stored, number)
        self.canonical[candidate_id] = _canonical(output)
        return True

    # --- outputs, by task (exports.outputs writes them) -------------------------------------

    def _output(self, at: str, output: Any, item: ArchiveItem) -> dict | None:
        if self.rows.mapping(output, at) is None:
            return None
        task = self.project.task
        if task == VisionTask.DETECTION:
            return self._detection(at, output, item)
        if task == VisionTask.CAPTIONING:
            caption = self.rows.text(self.rows.field(output, "caption", at), f"{at}.caption")
            return None if caption is None else {"caption": caption}
        if task == VisionTask.COLORIZATION:
            member = self.rows.text(self.rows.field(output, "image", at), f"{at}.image")
            if member is None or self._size(f"{at}.image", member) is None:
                return None
            return {"image_url": member}
        return self._panoptic(at, output, item)

    def _category(self, value: Any, path: str) -> int | None:
        category_id = self.rows.integer(value, path)
        if category_id is not None and category_id not in self.categories:
            self.rows.fail(path, f"{category_id} is not a category of project.json "
                                 f"(known: {sorted(self.categories)}).")
            return None
        return category_id

    def _detection(self, at: str, output: dict, item: ArchiveItem) -> dict | None:
        rows = self.rows
        lists = [rows.array(rows.field(output, key, at), f"{at}.{key}")
                 for key in ("boxes", "category_ids", "scores")]
        if None in lists:
            return None
        boxes, categories, scores = lists
        if not len(boxes) == len(categories) == len(scores):
            rows.fail(at, f"{len(boxes)} boxes, {len(categories)} category ids and "
                          f"{len(scores)} scores.")
            return None
        objects, ok = [], True
        image = (item.file_name, item.width, item.height)
        for index, (box, category, score) in enumerate(zip(*lists, strict=True)):
            bbox = rows.bbox(box, f"{at}.boxes[{index}]", image=image)
            category_id = self._category(category, f"{at}.category_ids[{index}]")
            if score is not None:
                score = rows.number(score, f"{at}.scores[{index}]")
                ok &= score is not None
            ok &= bbox is not None and category_id is not None
            objects.append({"bbox": bbox, "category_id": category_id}
                           | ({} if score is None else {"score": score}))
        return {"objects": objects} if ok else None

    def _panoptic(self, at: str, output: dict, item: ArchiveItem) -> dict | None:
        rows = self.rows
        segments, listed = [], set()
        for index, record in enumerate(rows.array(rows.field(output, "segments", at),
                                                  f"{at}.segments") or []):
            path = f"{at}.segments[{index}]"
            if rows.mapping(record, path) is None:
                return None
            segment_id = rows.integer(rows.field(record, "id", path), f"{path}.id")
            category_id = self._category(rows.field(record, "category_id", path),
                                         f"{path}.category_id")
            crowd = record.get("iscrowd", 0)
            if crowd not in (0, 1) or type(crowd) is bool:
                rows.fail(f"{path}.iscrowd", f"expected 0 or 1, got {crowd!r}.")
                return None
            if segment_id is None or category_id is None:
                return None
            if segment_id <= 0 or segment_id in listed:
                rows.fail(f"{path}.id", f"segment ids are positive and unique, got "
                                        f"{segment_id}.")
                return None
            listed.add(segment_id)
            segments.append({"id": segment_id, "category_id": category_id}
                            | ({"iscrowd": 1} if crowd else {}))
        stored: dict = {"segments": segments}
        png, overlay = output.get("png"), output.get("overlay")
        if png is None and overlay is None:
            rows.fail(at, "a panoptic output has a png, an overlay or both.")
            return None
        if overlay is not None:
            if rows.text(overlay, f"{at}.overlay") is None or self._size(
                    f"{at}.overlay", overlay, PNG_SUFFIXES) is None:
                return None
            stored["overlay_url"] = overlay
        if png is not None:
            if rows.text(png, f"{at}.png") is None or not self._segments_match(
                    f"{at}.png", png, item, listed):
                return None
            stored["png_url"] = png
        return stored

    def _segments_match(self, path: str, member: str, item: ArchiveItem, listed: set[int]
                        ) -> bool:
        """The panoptic PNG is the item's size and holds exactly the listed segments."""
        if self._size(path, member, PNG_SUFFIXES) is None:
            return False
        try:
            ids = panoptic.segment_ids(self.archive.read(member))
        except ValueError as error:
            self.problems.add(self.archive.label, f"{member}: {error}.")
            return False
        if ids.shape != (item.height, item.width):
            self.rows.fail(path, f"{member} is {ids.shape[1]}x{ids.shape[0]} pixels, but "
                                 f"{item.file_name} is {item.width}x{item.height}.")
            return False
        in_png = {int(i) for i in set(ids.ravel().tolist())} - {0}
        if in_png != listed:
            self.rows.fail(path, f"{member} holds segments {sorted(in_png)[:10]}, the output "
                                 f"lists {sorted(listed)[:10]}.")
            return False
        return True


def archive_plan(*, project: Project, archive: ArchiveFiles) -> tuple[ArchivePlan, Problems]:
    """Check everything the archive's import would write; write the plan only when there are
    no problems."""
    planner = _ArchivePlanner(project, archive)
    planner.check()
    return planner.plan, planner.problems
