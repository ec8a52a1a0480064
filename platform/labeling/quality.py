"""Agreement between annotators, for the project admins' quality page.

- 1-5 scale: Krippendorff's alpha, ordinal (the scale's steps are ordered but not known to be
  equal; the interval alpha is reported beside it). Units are tasks; a task with fewer than two
  answers is not pairable and adds nothing, as in Krippendorff (2011), "Computing Krippendorff's
  Alpha-Reliability".
- A-vs-B preferences: the pairwise agreement rate, the share of pairs of annotators on one task
  who gave the same choice (tie included as a choice).
- Rankings: the same rate over candidate pairs: two annotators agree on a pair of candidates when
  they order it the same way.
Per annotator: answers, median seconds per answer, and agreement with the rest (the same rate,
over the pairs that annotator is part of; for the scale, an exact score match).
"""

from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from statistics import median

from labeling.models import Comparison, Rating, Task
from projects.models import Project, RatingMode

LEVELS = ("nominal", "ordinal", "interval")


def krippendorff_alpha(units: Iterable[Sequence[float]], *, level: str = "ordinal"
                       ) -> float | None:
    """Krippendorff's alpha of the values each unit got (missing values simply left out).

    None when it is undefined: fewer than two pairable values, or no variation at all.
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    coincidences: dict[tuple[float, float], float] = defaultdict(float)
    for values in units:
        m = len(values)
        if m < 2:
            continue
        for i, j in ((i, j) for i in range(m) for j in range(m) if i != j):
            coincidences[values[i], values[j]] += 1.0 / (m - 1)
    totals: dict[float, float] = defaultdict(float)
    for (c, _), weight in coincidences.items():
        totals[c] += weight
    n = sum(totals.values())
    if n < 2:
        return None
    ordered = sorted(totals)

    def delta2(c: float, k: float) -> float:
        if level == "nominal":
            return float(c != k)
        if level == "interval":
            return (c - k) ** 2
        lo, hi = sorted((c, k))
        between = sum(totals[g] for g in ordered if lo <= g <= hi)
        return (between - (totals[c] + totals[k]) / 2) ** 2

    observed = sum(w * delta2(c, k) for (c, k), w in coincidences.items())
    expected = sum(totals[c] * totals[k] * delta2(c, k) for c in ordered for k in ordered)
    if expected == 0:
        return None
    return 1.0 - (n - 1) * observed / expected


def _pair_agreement(mode: str, a: Hashable, b: Hashable) -> tuple[int, int]:
    """(agreements, comparisons) between two annotators' answers to one task."""
    if mode != RatingMode.RANKING:
        return int(a == b), 1
    rank_a = {c: r for r, c in enumerate(a)}
    rank_b = {c: r for r, c in enumerate(b)}
    pairs = list(combinations(sorted(rank_a), 2))
    agree = sum((rank_a[x] < rank_a[y]) == (rank_b[x] < rank_b[y]) for x, y in pairs)
    return agree, len(pairs)


@dataclass
class AnnotatorQuality:
    id: int
    username: str
    answers: int = 0
    median_seconds: float | None = None
    agreement_with_others: float | None = None
    compared: int = 0
    _agreed: int = 0
    _seconds: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class ProjectQuality:
    rating_mode: str
    metric: str
    agreement: float | None
    alpha_interval: float | None
    pairable_tasks: int
    answers: int
    tasks: int
    tasks_complete: int
    annotators: list[AnnotatorQuality]


def project_quality(*, project: Project) -> ProjectQuality:
    """The project's agreement and its per-annotator figures, from all its own annotators'
    answers so far (imported feedback left out)."""
    mode = project.rating_mode
    if mode == RatingMode.SCALE:
        rows = Rating.objects.own().filter(task__project=project).values_list(
            "task_id", "annotator_id", "annotator__username", "score", "time_spent_ms"
        )
    else:
        value = "choice" if mode == RatingMode.PAIRWISE else "ranking"
        rows = Comparison.objects.own().filter(task__project=project).values_list(
            "task_id", "annotator_id", "annotator__username", value, "time_spent_ms"
        )
    by_task: dict[int, list[tuple[int, Hashable]]] = defaultdict(list)
    people: dict[int, AnnotatorQuality] = {}
    for task_id, user_id, username, answer, spent_ms in rows.order_by("id"):
        person = people.setdefault(user_id, AnnotatorQuality(id=user_id, username=username))
        person.answers += 1
        person._seconds.append(spent_ms / 1000)
        by_task[task_id].append((user_id, tuple(answer) if isinstance(answer, list) else answer))

    agreed = compared = 0
    for answers in by_task.values():
        for (user_a, a), (user_b, b) in combinations(answers, 2):
            agree, n = _pair_agreement(mode, a, b)
            agreed, compared = agreed + agree, compared + n
            for user in (user_a, user_b):
                people[user]._agreed += agree
                people[user].compared += n
    for person in people.values():
        person.median_seconds = median(person._seconds)
        if person.compared:
            person.agreement_with_others = person._agreed / person.compared

    if mode == RatingMode.SCALE:
        units = [[score for _, score in answers] for answers in by_task.values()]
        metric, agreement = "krippendorff_alpha_ordinal", krippendorff_alpha(units)
        alpha_interval = krippendorff_alpha(units, level="interval")
    else:
        metric, agreement = "pairwise_agreement_rate", (agreed / compared if compared else None)
        alpha_interval = None
    tasks = Task.objects.filter(project=project)
    return ProjectQuality(
        rating_mode=mode,
        metric=metric,
        agreement=agreement,
        alpha_interval=alpha_interval,
        pairable_tasks=sum(len(answers) >= 2 for answers in by_task.values()),
        answers=sum(p.answers for p in people.values()),
        tasks=tasks.count(),
        tasks_complete=tasks.filter(answer_count__gte=project.overlap).count(),
        annotators=sorted(people.values(), key=lambda p: p.username),
    )
