"""The dataset card (README.md) of a dataset archive: what the rows are and where they came from.

It states the task, the rating mode, the classes, how many annotators gave the rows (the
project's own, and those of imported feedback), their agreement, the rows' date range, the
filters of the export and the project's licence, and shows the one line that loads the rows.
The YAML header is the Hugging Face card's: `configs` points the loader at data.jsonl.
"""

import json
from datetime import UTC, datetime

from exports.selectors import ExportFilters, ExportSummary
from labeling.models import answer_model
from labeling.quality import project_quality
from projects.models import Project, RatingMode

# The agreement is computed from every answer of the project's own annotators (as on its
# quality page), in memory; past this many answers the card points to that page instead, so
# the archive's stream stays within constant memory.
AGREEMENT_MAX_ANSWERS = 200_000

_ANSWER_FIELD = {
    RatingMode.SCALE: "`score`: 1 (worst) to 5 (best) for the one shown candidate",
    RatingMode.PAIRWISE: '`choice`: "A" (the first of `candidates`), "B" (the second) or "tie"',
    RatingMode.RANKING: "`ranking`: the shown candidates' ids, best first",
}


def _agreement(project: Project) -> str:
    own = answer_model(project.rating_mode).objects.own().filter(task__project=project)
    if own.count() > AGREEMENT_MAX_ANSWERS:
        return (f"not computed for over {AGREEMENT_MAX_ANSWERS:,} answers; see the project's "
                f"quality page (`GET /api/projects/{project.pk}/quality/`)")
    quality = project_quality(project=project)
    if quality.agreement is None:
        return f"undefined ({quality.metric}: no task has two answers of its own annotators)"
    return (f"{quality.agreement:.3f} ({quality.metric}, over {quality.pairable_tasks:,} tasks "
            f"with two or more answers of the project's own annotators)")


def dataset_card(*, project: Project, filters: ExportFilters, summary: ExportSummary,
                 files: int, missing: int) -> str:
    """README.md of the archive."""
    classes = ", ".join(f"{c['id']}: {c['name']}" for c in project.categories
                        if isinstance(c, dict)) or "none (the task has no classes)"
    mode = project.rating_mode
    if mode == RatingMode.RANKING:
        mode = f"{mode} (up to {project.ranking_k} candidates a task)"
    described = filters.described()
    span = (f"{summary.first.astimezone(UTC):%Y-%m-%d %H:%M} to "
            f"{summary.last.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
            if summary.first and summary.last else "no answers")
    lines = [
        "---",
        f"pretty_name: {json.dumps(project.name)}",
        "configs:",
        "- config_name: default",
        "  data_files: data.jsonl",
        "---",
        "",
        f"# {project.name}",
        "",
        "Human feedback on computer-vision model outputs, exported from Tunelab "
        f"on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        f"- Task: {project.task}",
        f"- Rating mode: {mode}; the answer is {_ANSWER_FIELD[project.rating_mode]}",
        f"- Classes: {classes}",
        f"- Rows (answers): {summary.answers:,}",
        f"- Annotators: {summary.annotators:,} of the project's own, "
        f"{summary.imported_annotators:,} of imported feedback",
        f"- Agreement: {_agreement(project)}",
        f"- Answers from {span}",
        "- Filters: " + (", ".join(f"{k}={v}" for k, v in described.items()) or "none"),
        f"- Licence: {project.licence or 'not set by the project'}",
        f"- Files: {files:,} images and output images" + (
            f"; {missing:,} the rows name were missing from storage and are not included"
            if missing else ""),
        "",
        "## Load",
        "",
        "On the unpacked archive:",
        "",
        "```python",
        'datasets.load_dataset("json", data_files="data.jsonl")',
        "```",
        "",
        "## Files",
        "",
        "- `data.jsonl`: one answer per line: `kind`, `item`, `file_name`, `image` (the item's "
        "image, a path in this archive), `candidates` (ids, in the order shown), "
        "`model_versions`, `outputs` (each candidate's output, same order), `score`, "
        "`choice`, `ranking`, `annotator`, `time_spent_ms`, `created_at` (ISO 8601, UTC).",
        "- `images/`: the items' images; `outputs/`: output images.",
        "- `project.json`: the task, rating mode and categories, for `manage.py import_data "
        "--dataset` or the import endpoint of another Tunelab.",
        "",
    ]
    return "\n".join(lines)
