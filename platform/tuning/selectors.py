"""Reads for tuning runs: what a project admin may see of them."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.http import Http404

from common.permissions import ADMINS, project_for
from projects.models import Project
from tuning.models import TuningRun, TuningStep


def runs_of(project: Project) -> QuerySet[TuningRun]:
    return TuningRun.objects.filter(project=project).select_related(
        "start_version", "result_version", "reward_model"
    )


def run_for(user: AbstractBaseUser, run_id: int) -> TuningRun:
    """The run if the user is an admin of its project: 404 for unknown ids and non-members,
    403 for other members (the same rule as project endpoints)."""
    run = TuningRun.objects.select_related(
        "start_version", "result_version", "reward_model", "project"
    ).filter(pk=run_id).first()
    if run is None:
        raise Http404("No such tuning run.")
    project_for(user, run.project_id, roles=ADMINS)
    return run


def steps_of(run: TuningRun, *, after: int | None = None, limit: int = 1000
             ) -> QuerySet[TuningStep]:
    """The run's logged steps in order; `after` gives only those past a step the caller has."""
    steps = TuningStep.objects.filter(run=run).order_by("step")
    if after is not None:
        steps = steps.filter(step__gt=after)
    return steps[:limit]

