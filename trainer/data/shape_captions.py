"""Captions of Synthetic Shapes scenes: several paraphrases per scene, in words.

Each template says something different (a list, a spatial relation, counts per shape, places,
counts per colour), so that reference-based metrics such as CIDEr reward captions that get the
content right rather than one fixed wording. Plain Python on lists: a scene has a few objects and
numpy's per-call overhead would cost more than the work.
"""

from __future__ import annotations

from collections import Counter

_NUMBERS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")

Box = list[float]  # [ymin, xmin, ymax, xmax] pixels


def _number(n: int) -> str:
    return _NUMBERS[n] if n < len(_NUMBERS) else str(n)


def _plural(name: str) -> str:
    return name + ("es" if name.endswith(("s", "x")) else "s")


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _relation(a: Box, b: Box) -> str:
    """Where box a lies relative to box b, along the axis where their centres differ most."""
    dy = (a[0] + a[2] - b[0] - b[2]) / 2
    dx = (a[1] + a[3] - b[1] - b[3]) / 2
    if abs(dx) >= abs(dy):
        return "to the left of" if dx < 0 else "to the right of"
    return "above" if dy < 0 else "below"


def _region(box: Box, size: int) -> str:
    """Which ninth of the image the box's centre is in, in words."""
    cy, cx = (box[0] + box[2]) / (2 * size), (box[1] + box[3]) / (2 * size)
    vertical = "top" if cy < 1 / 3 else "bottom" if cy > 2 / 3 else ""
    horizontal = "left" if cx < 1 / 3 else "right" if cx > 2 / 3 else ""
    if vertical and horizontal:
        return f"in the {vertical} {horizontal} corner"
    if vertical or horizontal:
        return f"at the {vertical or horizontal}"
    return "in the middle"


def describe_scene(
    boxes: list[Box], shapes: list[str], colours: list[str], size: int, noun: str = "shapes"
) -> tuple[str, ...]:
    """Five paraphrases of a scene of `size` px whose object k is a `colours[k]` `shapes[k]` in
    `boxes[k]`: a list, a relation, counts per shape, places, and counts per colour. `noun` is
    the plural the list uses ("shapes" or "objects")."""
    n = len(shapes)
    areas = [(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]
    by_size = sorted(range(n), key=lambda k: -areas[k])
    # Size words are relative: the smallest third of a scene is "small", the largest "large".
    rank = {k: n - 1 - position for position, k in enumerate(by_size)}

    def phrase(k: int, sized: bool = True) -> str:
        size_word = ""
        if sized and n > 2:
            size_word = "small " if 3 * rank[k] < n else "large " if 3 * rank[k] >= 2 * n else ""
        return f"{size_word}{colours[k]} {shapes[k]}"

    left_to_right = sorted(range(n), key=lambda k: boxes[k][1] + boxes[k][3])
    listing = _join([_article(phrase(k)) for k in left_to_right])
    captions = [f"{_number(n)} {noun}: {listing}" if n > 1 else listing]

    if n == 1:
        captions.append(f"a single {phrase(0, sized=False)} {_region(boxes[0], size)}")
    else:
        first, second = by_size[0], by_size[1]
        relation = (
            f"{_article(phrase(first))} {_relation(boxes[first], boxes[second])} "
            f"{_article(phrase(second))}"
        )
        captions.append(relation if n == 2 else f"{relation} among {_number(n)} {noun}")

    counts = sorted(Counter(shapes).items(), key=lambda item: -item[1])
    counted = [f"{_number(m)} {name if m == 1 else _plural(name)}" for name, m in counts]
    verb = "is" if counts[0][1] == 1 else "are"  # agrees with the first item: "there is one x"
    captions.append(f"there {verb} {_join(counted)}")

    top_to_bottom = sorted(range(n), key=lambda k: boxes[k][0] + boxes[k][2])
    captions.append(
        _join([f"{_article(phrase(k, sized=False))} {_region(boxes[k], size)}"
               for k in top_to_bottom])
    )

    by_colour = sorted(Counter(colours).items(), key=lambda item: -item[1])
    colour_counts = [f"{_number(m)} {name} {'shape' if m == 1 else 'shapes'}"
                     for name, m in by_colour]
    largest = phrase(by_size[0], sized=False)
    captions.append(f"{_join(colour_counts)}, the largest is {_article(largest)}")
    return tuple(captions)
