"""`manage.py simulate_annotators PROJECT_ID`: simulated annotators answer the project's queue
through the REST API (see training.simulated)."""

from django.core.management.base import BaseCommand, CommandError

from common.errors import ApplicationError
from projects.models import Project
from training.simulated import DEFAULT_NOISES, answer_queue, simulated_annotators

_DEFAULTS = ", ".join(f"{task} {noise:g}" for task, noise in DEFAULT_NOISES.items())


class Command(BaseCommand):
    help = ("Simulated annotators answer a project's queue (any task) through the API, "
            "preferring outputs by the task's metric against the items' ground truth, with "
            "noise; each reports the share of its decided pairs on which its label names the "
            "gold-better output. Never human data.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("project_id", type=int)
        parser.add_argument("--annotators", type=int, default=1,
                            help="how many simulated annotators (the project's overlap is "
                                 "honoured by the queue)")
        parser.add_argument("--noise", type=float, default=None,
                            help="how often labels contradict the gold order: the logistic "
                                 "scale on the task's gold score, so a pair whose gold differs "
                                 "by d is answered right with probability sigmoid(d / noise); "
                                 "0 = always right. Default: the task's (" + _DEFAULTS + "), at "
                                 "which labels name the gold-better output on about 80%% of "
                                 "decided pairs of policy samples; the command reports the "
                                 "share it gave")
        parser.add_argument("--limit", type=int, default=None,
                            help="most answers per annotator (default: until the queue is empty)")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, project_id: int, annotators: int, noise: float | None,
               limit: int | None, seed: int, **options) -> None:
        project = Project.objects.filter(pk=project_id).first()
        if project is None:
            raise CommandError(f"No project with id {project_id}.")
        if annotators < 1:
            raise CommandError("--annotators must be at least 1.")
        try:
            for index, user in enumerate(simulated_annotators(project, annotators)):
                report = answer_queue(project, user, noise=noise, seed=seed + index,
                                      limit=limit)
                agreement = ("" if report.agreement is None else
                             f"; labels named the gold-better output on "
                             f"{100 * report.agreement:.0f}% of decided pairs")
                self.stdout.write(f"{user.username}: {report.answered} answered, "
                                  f"{report.skipped} skipped (no ground truth){agreement}")
        except ApplicationError as error:
            raise CommandError(error.message) from None
