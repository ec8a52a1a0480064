"""Reads for the console pages: a project's tuning runs, model versions (and two of them side by
side), the launch form's settings, annotator quality as charts, and export links.

Everything comes from rows the platform already keeps: a version's `metrics` JSON (written by
the run that made it), a run's `samples`, `labeling.quality.project_quality` for agreement and
the export API's own query serializer for the export filters. The settings of a run come from
the trainer's torch-free `trainer.configs`.
"""

import dataclasses
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.db.models import Count, Q, QuerySet
from django.http import Http404, QueryDict
from django.urls import reverse

from common.jobs import JobStatus
from exports.api import ExportQuerySerializer
from labeling.quality import ProjectQuality, project_quality
from projects.models import CheckpointState, Membership, ModelVersion, Project
from rewards.models import RewardModel
from trainer.configs import TuneConfig, help_for
from tuning.models import TuningRun
from tuning.selectors import runs_of

# Where the launch form starts a setting other than at the trainer's default: every step
# logged, so the run page draws the run from its first step on (the trainer logs every 20th).
FORM_START = {"log_every": 1}
EXPORT_FORMATS = tuple(ExportQuerySerializer().fields["format"].choices)  # the API's own
EXPORT_FILTERS = ("format", "model_version", "annotator", "since", "until", "page_size")


# --- Figures --------------------------------------------------------------------------------


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _shown(value: float) -> str:
    return f"{value:.4g}"


def key_metrics(metrics: dict) -> list[tuple[str, str]]:
    """The held-out figures a version's metrics hold, as (label, value): mAP where the images
    have ground truth, the learned reward of the starting and the tuned model, and any other
    top-level `heldout...` number."""
    figures = []
    if _number(metrics.get("map")):
        figures.append(("mAP", _shown(metrics["map"])))
    learned = metrics.get("learned_reward")
    if isinstance(learned, dict) and _number(learned.get("after")):
        before = _shown(learned["before"]) if _number(learned.get("before")) else "-"
        figures.append(("learned reward", f"{before} → {_shown(learned['after'])}"))
    figures += [(name, _shown(value)) for name, value in sorted(metrics.items())
                if name.startswith("heldout") and _number(value)]
    return figures


def flat_metrics(metrics: dict, prefix: str = "") -> dict[str, float]:
    """The numbers of a metrics JSON by dotted path (`eval.class.map`)."""
    flat: dict[str, float] = {}
    for name, value in metrics.items():
        path = f"{prefix}{name}"
        if isinstance(value, dict):
            flat |= flat_metrics(value, f"{path}.")
        elif _number(value):
            flat[path] = value
    return flat


# --- Tuning runs ----------------------------------------------------------------------------


def run_rows(project: Project) -> list[dict[str, Any]]:
    """The project's runs, newest first, each with its result's held-out figures."""
    return [{"run": run, "figures": key_metrics(run.result_version.metrics)
             if run.result_version else []}
            for run in runs_of(project).order_by("-id")]


def ready_versions(project: Project) -> list[ModelVersion]:
    """The versions a run or a new round can start from: a checkpoint a worker has read."""
    return [version for version in
            ModelVersion.objects.filter(project=project).exclude(checkpoint="").order_by("id")
            if version.checkpoint_state == CheckpointState.READY]


def trained_reward_models(project: Project) -> QuerySet[RewardModel]:
    return RewardModel.objects.filter(project=project, status=JobStatus.SUCCEEDED).order_by("id")


def tune_settings() -> list[dict[str, Any]]:
    """The TuneConfig fields as the launch form shows them: name, kind (bool, int, float, str,
    choice), the trainer's default, the form's starting value, the choices and the help (which
    names the values the field accepts)."""
    helps = help_for(TuneConfig)
    settings = []
    for field in dataclasses.fields(TuneConfig):
        choices = field.metadata.get("choices")
        settings.append({
            "name": field.name, "kind": "choice" if choices else type(field.default).__name__,
            "default": field.default, "value": FORM_START.get(field.name, field.default),
            "choices": choices or (), "help": helps[field.name],
            "started": field.name in FORM_START,
        })
    return settings


def tune_defaults() -> dict[str, Any]:
    """What the trainer does with a setting left out: the launch form sends only the others."""
    return dataclasses.asdict(TuneConfig())


# --- Model versions -------------------------------------------------------------------------


def version_rows(project: Project) -> list[dict[str, Any]]:
    """The project's versions with their parent, the run that made them, candidates and
    held-out figures."""
    versions = (ModelVersion.objects.filter(project=project)
                .select_related("parent", "made_by")
                .annotate(candidate_count=Count("candidates")).order_by("id"))
    return [{"version": version, "figures": key_metrics(version.metrics),
             "checkpoint": CheckpointState(version.checkpoint_state).label,
             "run": getattr(version, "made_by", None)} for version in versions]


def version_of(project: Project, version_id: Any) -> ModelVersion:
    """A version of the project by id; another project's ids are as unknown as missing ones."""
    try:
        version = ModelVersion.objects.filter(project=project, pk=int(version_id)).first()
    except (TypeError, ValueError):
        version = None
    if version is None:
        raise Http404("No such model version in this project.")
    return version


@dataclass(frozen=True)
class VersionComparison:
    before: ModelVersion
    after: ModelVersion
    rows: list[dict[str, Any]]  # {"name", "before", "after", "change"}, numbers or None
    run: TuningRun | None  # a run that made one of the two from the other


def versions_compared(project: Project, before_id: Any, after_id: Any) -> VersionComparison:
    """Two versions' metrics side by side and, where a tuning run made one from the other, that
    run (its samples show both models' outputs on the same images)."""
    before, after = version_of(project, before_id), version_of(project, after_id)
    a, b = flat_metrics(before.metrics), flat_metrics(after.metrics)
    rows = [{"name": name, "before": a.get(name), "after": b.get(name),
             "change": b[name] - a[name] if name in a and name in b else None}
            for name in sorted(a.keys() | b.keys())]
    run = (TuningRun.objects.filter(project=project)
           .filter(Q(start_version=before, result_version=after)
                   | Q(start_version=after, result_version=before))
           .select_related("start_version", "result_version").order_by("-id").first())
    return VersionComparison(before=before, after=after, rows=rows, run=run)


# --- Quality --------------------------------------------------------------------------------


def _share(value: float | None, top: float) -> float:
    return 0.0 if value is None or top <= 0 else round(100 * value / top, 1)


@dataclass(frozen=True)
class QualityCharts:
    quality: ProjectQuality
    # One bar chart per figure: {"title", "unit", "bars": [{"label", "value", "width" (%)}]}.
    charts: list[dict[str, Any]]


def quality_charts(project: Project) -> QualityCharts:
    """`project_quality` (what the quality API answers) with a bar chart of each annotator's
    answers, median seconds per answer and agreement with the others."""
    quality = project_quality(project=project)
    people = quality.annotators

    def chart(title: str, unit: str, values: list[float | None], top: float) -> dict:
        return {"title": title, "unit": unit, "bars": [
            {"label": person.username, "value": value, "width": _share(value, top)}
            for person, value in zip(people, values, strict=True)]}

    answers = [person.answers for person in people]
    seconds = [person.median_seconds for person in people]
    agreement = [person.agreement_with_others for person in people]
    return QualityCharts(quality=quality, charts=[
        chart("Answers", "answers", answers, max(answers, default=0)),
        chart("Median seconds per answer", "s", seconds,
              max((s for s in seconds if s is not None), default=0)),
        chart("Agreement with the others", "share", agreement, 1.0),
    ])


# --- Export ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportLink:
    url: str | None  # None while the filters have errors
    errors: dict[str, list[str]]
    values: dict[str, str]  # the filters given, to fill the form again


def export_link(project: Project, query: QueryDict) -> ExportLink:
    """The export API's URL for the filters given (empty ones left out), checked by the API's
    own query serializer, or its errors by field."""
    values = {name: query.get(name, "").strip() for name in EXPORT_FILTERS}
    given = {name: value for name, value in values.items() if value}
    check = ExportQuerySerializer(data=given, context={"project": project})
    base = reverse("project-export", args=[project.pk])
    if not check.is_valid():
        errors = {name: [str(m) for m in (messages if isinstance(messages, list) else [messages])]
                  for name, messages in check.errors.items()}
        return ExportLink(url=None, errors=errors, values=values)
    return ExportLink(url=f"{base}?{urlencode(given)}" if given else base, errors={},
                      values=values)


def export_choices(project: Project) -> dict[str, list[str]]:
    """Names the export filters take: the project's versions and its members."""
    return {
        "model_versions": list(ModelVersion.objects.filter(project=project)
                               .order_by("name").values_list("name", flat=True)),
        "annotators": list(Membership.objects.filter(project=project)
                           .order_by("user__username").values_list("user__username", flat=True)),
    }
