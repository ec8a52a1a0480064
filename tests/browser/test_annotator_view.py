"""How the annotator sees a task in a real browser: zoom and pan with the outputs on their
pixels, hiding the outputs, label chips apart on a crowded image, and a window 400 px wide."""

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

# Frames, their images, boxes, chips and the instructions, as page rectangles.
RECTS = """(selector) => [...document.querySelectorAll(selector)].map((node) => {
    const {left, top, width, height} = node.getBoundingClientRect();
    return {left, top, width, height};
})"""


def rects(page, selector: str) -> list[dict]:
    return page.evaluate(RECTS, selector)


def intersect(a: dict, b: dict, slack: float = 0.5) -> bool:
    """Whether the rectangles share more than a `slack`-wide strip."""
    return (a["left"] + slack < b["left"] + b["width"]
            and b["left"] + slack < a["left"] + a["width"]
            and a["top"] + slack < b["top"] + b["height"]
            and b["top"] + slack < a["top"] + a["height"])


def open_annotate(page, live_server, log_in, built) -> None:
    log_in(page, live_server, built.annotator)
    page.goto(f"{live_server.url}/projects/{built.project.pk}/annotate/")
    expect(page.locator("#stage .panel").first).to_be_visible()


def test_zoom_keys_wheel_and_drag_keep_the_boxes_on_the_image(
    live_server, page, shapes_project, log_in
):
    built = shapes_project(task="detection", rating_mode="scale", n_items=1)
    open_annotate(page, live_server, log_in, built)
    stage = page.locator("#stage")
    expect(stage.locator("rect.box").first).to_be_visible()
    (frame,) = rects(page, "#stage .frame")
    (img,) = rects(page, "#stage .frame img")
    box = rects(page, "#stage rect.box")[0]
    assert img == frame

    def where_box_is() -> tuple[float, float, float]:
        """The first box in fractions of the image as it is drawn now."""
        (img,), b = rects(page, "#stage .frame img"), rects(page, "#stage rect.box")[0]
        return ((b["left"] - img["left"]) / img["width"], (b["top"] - img["top"]) / img["height"],
                b["width"] / img["width"])

    home = where_box_is()
    page.keyboard.press("+")
    expect(stage).to_have_attribute("data-zoom", "1.25")
    layer = page.locator("#stage .zoom-layer")
    transform = layer.evaluate("(node) => getComputedStyle(node).transform")
    assert transform.startswith("matrix(1.25, 0, 0, 1.25,")
    (zoomed,) = rects(page, "#stage .frame img")
    assert zoomed["width"] == pytest.approx(1.25 * frame["width"], abs=0.5)
    assert where_box_is() == pytest.approx(home, abs=0.005)
    assert rects(page, "#stage rect.box")[0]["width"] == pytest.approx(1.25 * box["width"],
                                                                     abs=1.0)

    # The wheel zooms around the pointer: the image point under it stays under it.
    x, y = frame["left"] + 0.3 * frame["width"], frame["top"] + 0.6 * frame["height"]
    page.mouse.move(x, y)
    (before,) = rects(page, "#stage .frame img")
    page.mouse.wheel(0, -200)
    expect(stage).not_to_have_attribute("data-zoom", "1.25")
    (after,) = rects(page, "#stage .frame img")
    assert after["width"] > before["width"]
    for axis, size, at in (("left", "width", x), ("top", "height", y)):
        assert (at - after[axis]) / after[size] == pytest.approx(
            (at - before[axis]) / before[size], abs=0.005)

    # A drag pans the zoomed image, the boxes with it.
    page.mouse.down()
    page.mouse.move(x + 30, y + 20, steps=3)
    page.mouse.up()
    (panned,) = rects(page, "#stage .frame img")
    assert (panned["left"] - after["left"], panned["top"] - after["top"]) == pytest.approx(
        (30, 20), abs=1.0)
    assert where_box_is() == pytest.approx(home, abs=0.005)

    page.keyboard.press("0")
    expect(stage).to_have_attribute("data-zoom", "1")
    assert layer.evaluate("(node) => getComputedStyle(node).transform") == "none"
    assert rects(page, "#stage .frame img") == [frame]


def test_h_hides_the_outputs_of_every_pane_and_the_keys_list_says_so(
    live_server, page, shapes_project, log_in
):
    built = shapes_project(task="detection", rating_mode="pairwise", n_items=1, n_candidates=2)
    open_annotate(page, live_server, log_in, built)
    overlays = page.locator("#stage svg.overlay")
    chips = page.locator("#stage .chip")
    expect(overlays).to_have_count(2)
    for pane in range(2):
        expect(overlays.nth(pane)).to_be_visible()
    page.keyboard.press("h")
    for pane in range(2):
        expect(overlays.nth(pane)).to_be_hidden()
    for chip in range(chips.count()):
        expect(chips.nth(chip)).to_be_hidden()
    expect(page.locator("#stage .frame img").nth(1)).to_be_visible()
    expect(page.locator("button[data-key='h']")).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("h")
    for pane in range(2):
        expect(overlays.nth(pane)).to_be_visible()

    page.keyboard.press("?")
    keys = page.locator("#help")
    for text in ("Hide or show the drawn outputs", "Zoom in", "Zoom out",
                 "Show the whole image again", "around the pointer"):
        expect(keys).to_contain_text(text)


CROWDED = [
    {"bbox": [4.0 + 9 * (i % 5), 8.0 + 11 * (i // 5), 18.0, 14.0], "category_id": 1 + i % 3,
     "score": round(0.99 - 0.04 * i, 2)}
    for i in range(15)
] + [{"bbox": [20.0, 20.0, 18.0, 14.0], "category_id": 2, "score": 0.3}] * 2


def test_label_chips_on_a_crowded_image_do_not_cover_each_other(
    live_server, page, shapes_project, log_in
):
    built = shapes_project(task="detection", rating_mode="scale", n_items=1, objects=CROWDED)
    open_annotate(page, live_server, log_in, built)
    expect(page.locator("#stage .chip")).to_have_count(len(CROWDED))

    def check() -> None:
        # Resize observers report in the frame's next rendering step: after it, all is laid out.
        page.evaluate("() => new Promise((done) => requestAnimationFrame(() => "
                      "requestAnimationFrame(done)))")
        (frame,) = rects(page, "#stage .frame")
        chips = rects(page, "#stage .chip")
        for i, chip in enumerate(chips):
            assert chip["width"] > 0
            # On the image, where the frame would not cut them off.
            assert frame["left"] - 0.5 <= chip["left"]
            assert chip["left"] + chip["width"] <= frame["left"] + frame["width"] + 0.5
            assert frame["top"] - 0.5 <= chip["top"]
            assert chip["top"] + chip["height"] <= frame["top"] + frame["height"] + 0.5
            for j in range(i):
                assert not intersect(chip, chips[j]), (i, j, chip, chips[j])

    check()
    # Laid out again for the new scale when the window changes.
    page.set_viewport_size({"width": 900, "height": 700})
    expect(page.locator("#stage .chip").first).to_be_visible()
    page.wait_for_function(
        "() => document.querySelector('#stage .frame').getBoundingClientRect().width < 600")
    check()


@pytest.mark.parametrize(("task", "mode", "n_candidates"),
                         [("detection", "scale", 1), ("colorization", "ranking", 3)])
def test_a_400_px_window_scrolls_nowhere_and_the_instructions_stay_off_the_images(
    live_server, page, shapes_project, log_in, task, mode, n_candidates
):
    built = shapes_project(task=task, rating_mode=mode, n_items=1, n_candidates=n_candidates)
    page.set_viewport_size({"width": 400, "height": 760})
    open_annotate(page, live_server, log_in, built)
    expect(page.locator("#stage .frame img").first).to_be_visible()
    instructions = page.locator("#instructions")
    if instructions.is_hidden():
        page.keyboard.press("i")
    expect(instructions).to_be_visible()
    expect(instructions).to_contain_text("Judge how well the output describes the image.")
    width = "() => document.scrollingElement.scrollWidth"
    assert page.evaluate(width) <= 400
    (box,) = rects(page, "#instructions")
    images = rects(page, "#stage .frame img")
    assert images and all(image["width"] > 40 for image in images)
    assert not [image for image in images if intersect(image, box, slack=0)]
    # The controls and the top bar are within the window too, every button on it.
    for selector in ("header.topbar", ".controls", ".controls button"):
        for rect in rects(page, selector):
            assert rect["left"] >= 0 and rect["left"] + rect["width"] <= 400.5, selector
    page.goto(f"{live_server.url}/")
    expect(page.locator(".project-progress")).to_contain_text(re.compile(r"0 of [0-9]+ tasks"))
    assert page.evaluate(width) <= 400
