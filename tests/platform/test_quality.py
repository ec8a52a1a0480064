"""Agreement figures: Krippendorff's alpha against the published worked example, pairwise and
ranking agreement on hand-counted cases, and the quality endpoint on real answers."""

import pytest

from labeling.quality import krippendorff_alpha
from labeling.services.answers import answer_submit
from labeling.services.leases import next_task_for
from projects.models import RatingMode

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section E: four observers,
# twelve units, values 1-5, None = missing. Published: nominal .743, ordinal .815,
# interval .849.
N = None
RELIABILITY_DATA = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
    [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N],
]


@pytest.mark.parametrize(("level", "published"),
                         [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)])
def test_alpha_matches_krippendorffs_worked_example(level, published):
    units = [[v for v in unit if v is not None] for unit in zip(*RELIABILITY_DATA, strict=True)]
    assert krippendorff_alpha(units, level=level) == pytest.approx(published, abs=5e-4)


def test_alpha_is_one_for_perfect_agreement_and_undefined_without_pairs():
    assert krippendorff_alpha([[1, 1], [3, 3], [5, 5, 5]]) == pytest.approx(1.0)
    assert krippendorff_alpha([[4], [2]]) is None
    assert krippendorff_alpha([[3, 3], [3, 3]]) is None


def answer_all(project, users_answers):
    """Each user answers their next tasks with the given answers, in order."""
    for user, answers in users_answers:
        for i, body in enumerate(answers):
            task = next_task_for(user=user, project=project).task
            answer_submit(user=user, task=task, answer=body(task) if callable(body) else body,
                          idempotency_key=f"{user.pk}-{i}", time_spent_ms=1000 * (i + 1))


def test_pairwise_agreement_rate_and_per_annotator_figures(make_project, make_user,
                                                          api_client_for):
    admin, a, b, c = (make_user(name) for name in ("boss", "ann", "bob", "cid"))
    project = make_project(rating_mode=RatingMode.PAIRWISE, overlap=3, n_items=1,
                           n_candidates=2, admins=[admin], annotators=[a, b, c])
    # One task, three answers: A, A, B -> pairs (a,b) agree, (a,c) and (b,c) disagree: 1/3.
    answer_all(project, [(a, [{"choice": "A"}]), (b, [{"choice": "A"}]),
                         (c, [{"choice": "B"}])])
    quality = api_client_for(admin).get(f"/api/projects/{project.pk}/quality/").json()
    assert quality["metric"] == "pairwise_agreement_rate"
    assert quality["agreement"] == pytest.approx(1 / 3)
    assert (quality["answers"], quality["tasks"], quality["tasks_complete"]) == (3, 1, 1)
    people = {p["username"]: p for p in quality["annotators"]}
    assert people["ann"]["agreement_with_others"] == pytest.approx(0.5)
    assert people["cid"]["agreement_with_others"] == 0.0
    assert people["bob"]["median_seconds"] == 1.0
    assert people["ann"]["answers"] == 1


def test_ranking_agreement_counts_candidate_pairs(make_project, make_user):
    from labeling.quality import project_quality

    a, b = make_user(), make_user()
    project = make_project(rating_mode=RatingMode.RANKING, overlap=2, n_items=1,
                           n_candidates=3, annotators=[a, b])
    forward = lambda task: {"ranking": sorted(int(i) for i in task.key.split(","))}  # noqa: E731
    swapped = lambda task: {"ranking": [*forward(task)["ranking"][1::-1],  # noqa: E731
                                        forward(task)["ranking"][2]]}
    # x<y<z against y<x<z: they agree on (x,z) and (y,z), not on (x,y): 2 of 3.
    answer_all(project, [(a, [forward]), (b, [swapped])])
    assert project_quality(project=project).agreement == pytest.approx(2 / 3)


def test_scale_quality_reports_ordinal_alpha(make_project, make_user):
    from labeling.quality import project_quality

    a, b = make_user(), make_user()
    project = make_project(rating_mode=RatingMode.SCALE, overlap=2, n_items=2, n_candidates=2,
                           annotators=[a, b])
    answer_all(project, [(a, [{"score": s} for s in (1, 2, 4, 5)]),
                         (b, [{"score": s} for s in (1, 3, 4, 5)])])
    quality = project_quality(project=project)
    assert quality.metric == "krippendorff_alpha_ordinal"
    units = [[1, 1], [2, 3], [4, 4], [5, 5]]
    assert quality.agreement == pytest.approx(krippendorff_alpha(units, level="ordinal"))
    assert quality.alpha_interval == pytest.approx(krippendorff_alpha(units, level="interval"))
    assert 0.5 < quality.agreement < 1
