"""The annotator's whole path in a real browser: log in, pick the project, rate tasks with the
keyboard, undo one (an answer or a skip), see their progress on the projects page, and find
exactly the answers given in the admin's export."""

import json
import re

import pytest
from playwright.sync_api import Route, expect
from rest_framework.test import APIClient

pytestmark = pytest.mark.browser

SCREENSHOT = "/tmp/tunelab_annotate.png"
# Answers, with or without the `?after=` that names the preloaded task.
ANSWER_URL = re.compile(r"/api/tasks/[0-9]+/answer/(\?.*)?$")


def exported(project, admin) -> list[dict]:
    client = APIClient()
    client.force_authenticate(admin)
    response = client.get(f"/api/projects/{project.pk}/export/", {"format": "jsonl"})
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    return [json.loads(line) for line in body.splitlines() if line]


def scores_by_task(rows: list[dict]) -> dict[int, int]:
    return {row["task"]: row["score"] for row in rows}


def test_annotator_rates_with_the_keyboard_undoes_and_the_export_has_the_answers(
    live_server, page, shapes_project, log_in
):
    built = shapes_project(task="detection", rating_mode="scale", n_items=4)
    project = built.project
    log_in(page, live_server, built.annotator)
    page.click(f"a[href='/projects/{project.pk}/annotate/']")

    stage = page.locator("#stage")
    expect(stage.locator(".panel")).to_have_count(1)
    expect(page.locator("#progress")).to_have_text("0 of 4 today")
    # The boxes are drawn in the item's pixel coordinates, with one label chip per box.
    svg = stage.locator("svg.overlay")
    expect(svg).to_have_attribute("viewBox", "0 0 64 64")
    assert stage.locator("rect.box").count() == stage.locator(".chip").count() >= 1
    page.screenshot(path=SCREENSHOT)

    # The first answer reaches the server but its response is lost: the page sends it again with
    # the same idempotency key, and one rating is stored. The second is held back for a while.
    sent_bodies: list[dict] = []
    held: list[Route] = []

    def answer_route(route: Route) -> None:
        sent_bodies.append(route.request.post_data_json)
        if len(sent_bodies) == 1:
            route.fetch()
            route.abort()
        elif route.request.post_data_json["answer"] == {"score": 2}:
            held.append(route)
        else:
            route.continue_()

    page.route(ANSWER_URL, answer_route)
    preloaded = re.compile(r"^[0-9]+$")

    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    answered: dict[int, int] = {}
    for key in ("5", "2", "4"):
        task_id = int(stage.get_attribute("data-task-id"))
        expect(stage).to_have_attribute("data-preloaded", preloaded)
        next_id = stage.get_attribute("data-preloaded")
        page.keyboard.press(key)
        answered[task_id] = int(key)
        # The preloaded task is on screen at once, before the server has answered.
        expect(stage).to_have_attribute("data-task-id", next_id)
        if key == "2":
            expect(page.locator("#progress")).to_have_text("1 of 4 today")
            assert len(held) == 1
            held[0].continue_()
    first, second, third = answered
    expect(page.locator("#progress")).to_have_text("3 of 4 today")
    # Each answer's reply brought the task to preload: no next-task requests while answering.
    assert not [url for url in asked if "/next-task/" in url]
    assert sent_bodies[0] == sent_bodies[1]
    assert sent_bodies[0]["answer"] == {"score": 5}
    assert sent_bodies[0]["time_spent_ms"] > 0
    assert len({body["idempotency_key"] for body in sent_bodies}) == 3

    # U withdraws the last answer and shows its task again.
    page.keyboard.press("u")
    expect(stage).to_have_attribute("data-task-id", str(third))
    expect(page.locator("#progress")).to_have_text("2 of 4 today")
    rows = exported(project, built.admin)
    assert scores_by_task(rows) == {first: 5, second: 2}
    assert {row["annotator"] for row in rows} == {built.annotator.username}

    # Answered again, differently: the export has the new score, once.
    page.keyboard.press("3")
    expect(stage).not_to_have_attribute("data-task-id", str(third))
    expect(page.locator("#progress")).to_have_text("3 of 4 today")
    rows = exported(project, built.admin)
    assert len(rows) == 3
    assert scores_by_task(rows) == {first: 5, second: 2, third: 3}

    # The last task is skipped; then nothing is left.
    page.keyboard.press("s")
    expect(stage.locator(".message h2")).to_have_text("No more tasks")
    assert len(exported(project, built.admin)) == 3


def test_keys_overlay_and_instructions_toggle(live_server, page, shapes_project, log_in):
    built = shapes_project(task="captioning", rating_mode="pairwise", n_items=1, n_candidates=2)
    log_in(page, live_server, built.annotator)
    page.goto(f"{live_server.url}/projects/{built.project.pk}/annotate/")
    expect(page.locator("#stage .caption")).to_have_count(2)
    page.keyboard.press("?")
    help_dialog = page.locator("#help")
    expect(help_dialog).to_be_visible()
    expect(help_dialog).to_contain_text("A is better")
    expect(help_dialog).to_contain_text("Tie")
    # Rating keys do nothing while the overlay is open.
    page.keyboard.press("a")
    expect(page.locator("#progress")).to_have_text("0 of 1 today")
    page.keyboard.press("Escape")
    expect(help_dialog).to_be_hidden()
    instructions = page.locator("#instructions")
    expect(instructions).to_contain_text("Judge how well the output describes the image.")
    page.keyboard.press("i")
    expect(instructions).to_be_hidden()
    page.keyboard.press("i")
    expect(instructions).to_be_visible()
    page.keyboard.press("t")
    expect(page.locator("#stage .message h2")).to_have_text("No more tasks")
    expect(page.locator("#progress")).to_have_text("1 of 1 today")


def test_ranking_by_number_keys_in_the_order_pressed(live_server, page, shapes_project, log_in):
    built = shapes_project(task="colorization", rating_mode="ranking", n_items=1, n_candidates=3)
    log_in(page, live_server, built.annotator)
    page.goto(f"{live_server.url}/projects/{built.project.pk}/annotate/")
    panels = page.locator("#stage .panel[data-candidate-id]")
    expect(panels).to_have_count(3)
    # The greyscale input is shown beside the three colorized outputs.
    expect(page.locator("#stage .panel-input img")).to_have_count(1)
    shown = [int(panels.nth(i).get_attribute("data-candidate-id")) for i in range(3)]

    page.keyboard.press("1")
    expect(panels.nth(0).locator(".rank")).to_have_text("Rank 1")
    page.keyboard.press("Backspace")
    expect(panels.nth(0).locator(".rank")).to_have_text("")
    page.keyboard.press("3")
    page.keyboard.press("1")
    expect(panels.nth(0).locator(".rank")).to_have_text("Rank 2")
    page.keyboard.press("Enter")  # the output left unranked comes last
    expect(page.locator("#stage .message h2")).to_have_text("No more tasks")
    expect(page.locator("#progress")).to_have_text("1 of 1 today")

    (row,) = exported(built.project, built.admin)
    assert row["ranking"] == [shown[2], shown[0], shown[1]]


def test_panoptic_pairwise_draws_overlays_and_takes_a_choice(
    live_server, page, shapes_project, log_in
):
    built = shapes_project(task="panoptic", rating_mode="pairwise", n_items=1, n_candidates=2)
    log_in(page, live_server, built.annotator)
    page.goto(f"{live_server.url}/projects/{built.project.pk}/annotate/")
    expect(page.locator("#stage .badge")).to_have_text(["A", "B"])
    # Both outputs' segment ids are read (from `png_url` where there is one) and outlined.
    outlines = page.locator("#stage path.outline")
    expect(outlines).to_have_count(2)
    assert all(len(outlines.nth(i).get_attribute("d")) > 0 for i in range(2))
    painted = page.evaluate(
        """() => [...document.querySelectorAll('#stage canvas.overlay')].map((canvas) => {
            const {data} = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
            let n = 0;
            for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n += 1;
            return n;
        })"""
    )
    # One output lost a segment, so they colour different areas; neither colours everything.
    assert len(painted) == 2
    assert all(0 < n < 64 * 64 for n in painted)
    assert painted[0] != painted[1]
    page.keyboard.press("b")
    expect(page.locator("#progress")).to_have_text("1 of 1 today")
    (row,) = exported(built.project, built.admin)
    assert row["choice"] == "B"


def test_a_refused_answer_is_reported_without_stopping_the_annotator(
    live_server, page, shapes_project, log_in
):
    built = shapes_project(task="detection", rating_mode="scale", n_items=2)
    log_in(page, live_server, built.annotator)
    page.route(
        ANSWER_URL,
        lambda route: route.fulfill(
            status=409, content_type="application/json",
            body=json.dumps({"detail": "You skipped this task.", "errors": {}}),
        ),
    )
    page.goto(f"{live_server.url}/projects/{built.project.pk}/annotate/")
    stage = page.locator("#stage")
    expect(stage).to_have_attribute("data-preloaded", re.compile(r"^[0-9]+$"))
    second = stage.get_attribute("data-preloaded")
    page.keyboard.press("4")
    expect(stage).to_have_attribute("data-task-id", second)
    toast = page.locator("#toasts[aria-live] .toast")
    expect(toast).to_contain_text("was not saved: You skipped this task.")
    expect(page.locator("#progress")).to_have_text("0 of 2 today")
    assert exported(built.project, built.admin) == []


def test_undo_after_a_skip_brings_the_skipped_task_back(live_server, page, shapes_project, log_in):
    built = shapes_project(task="detection", rating_mode="scale", n_items=3)
    log_in(page, live_server, built.annotator)
    page.goto(f"{live_server.url}/projects/{built.project.pk}/annotate/")
    stage = page.locator("#stage")
    progress = page.locator("#progress")
    preloaded = re.compile(r"^[0-9]+$")
    expect(stage).to_have_attribute("data-preloaded", preloaded)
    first = int(stage.get_attribute("data-task-id"))
    page.keyboard.press("5")
    expect(progress).to_have_text("1 of 3 today")
    expect(stage).to_have_attribute("data-preloaded", preloaded)
    skipped = stage.get_attribute("data-task-id")

    page.keyboard.press("s")  # by accident
    expect(stage).not_to_have_attribute("data-task-id", skipped)
    page.keyboard.press("u")
    expect(stage).to_have_attribute("data-task-id", skipped)
    expect(page.locator("#toasts .toast")).to_contain_text("The task you skipped is back.")
    # The answer before the skip stands, and the skipped task takes its answer.
    expect(progress).to_have_text("1 of 3 today")
    page.keyboard.press("2")
    expect(progress).to_have_text("2 of 3 today")
    expect(stage).not_to_have_attribute("data-task-id", skipped)
    assert scores_by_task(exported(built.project, built.admin)) == {first: 5, int(skipped): 2}


def test_the_projects_page_shows_the_annotators_progress(live_server, page, shapes_project,
                                                         log_in):
    built = shapes_project(task="captioning", rating_mode="pairwise", n_items=2, n_candidates=2)
    log_in(page, live_server, built.annotator)
    card = page.locator(".project-card", has_text=built.project.name)
    expect(card.locator(".project-progress")).to_have_text("You answered 0 of 2 tasks · 0 today")
    card.locator("a", has_text="Annotate").click()
    expect(page.locator("#stage .caption")).to_have_count(2)
    page.keyboard.press("a")
    expect(page.locator("#progress")).to_have_text("1 of 2 today")
    page.click(".brand")
    expect(card.locator(".project-progress")).to_have_text("You answered 1 of 2 tasks · 1 today")
    assert card.locator("progress").get_attribute("value") == "1"
