"""`manage.py simulate_annotators PROJECT_ID`: simulated annotators answer the project's queue
through the REST API (see training.simulated)."""

from django.core.management.base import BaseCommand, CommandError

from common.errors import ApplicationError
from projects.models import Project
from training.simulated import DEFAULT_NOISE, answer_queue, simulated_annotators


class Command(BaseCommand):
    help = ("Simulated annotators answer a detection project's queue through the API, preferring "
            "outputs by the metric against ground truth, with noise. Never human data.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("project_id", type=int)
        parser.add_argument("--annotators", type=int, default=1,
                            help="how many simulated annotators (the project's overlap is "
                                 "honoured by the queue)")
        parser.add_argument("--noise", type=float, default=DEFAULT_NOISE,
                            help="0 = perfect; the scale of the logistic noise on gold scores "
                                 f"(default {DEFAULT_NOISE}, as the benchmarks')")
        parser.add_argument("--limit", type=int, default=None,
                            help="most answers per annotator (default: until the queue is empty)")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, project_id: int, annotators: int, noise: float, limit: int | None,
               seed: int, **options) -> None:
        project = Project.objects.filter(pk=project_id).first()
        if project is None:
            raise CommandError(f"No project with id {project_id}.")
        if annotators < 1:
            raise CommandError("--annotators must be at least 1.")
        try:
            for index, user in enumerate(simulated_annotators(project, annotators)):
                report = answer_queue(project, user, noise=noise, seed=seed + index,
                                      limit=limit)
                self.stdout.write(f"{user.username}: {report.answered} answered, "
                                  f"{report.skipped} skipped (no ground truth)")
        except ApplicationError as error:
            raise CommandError(error.message) from None
