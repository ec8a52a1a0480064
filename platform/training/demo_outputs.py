"""Simulated models for the demo: a Synthetic Shapes scene's ground truth made wrong at graded
quality levels, one way per task, so that the demo has outputs to rate before any model exists.

Each level is a frozen dataclass of error rates, and each task has three levels, good, fair and
poor. Every function is seeded and pure: the same scene, level and seed give the same output.

- detection: boxes jittered, objects missed, classes swapped, boxes invented;
- captioning: the scene described again with wrong colours, wrong shapes and wrong counts;
- colorization: the true colours degraded in YIQ, so the greyscale input stays as it is:
  desaturated, hue-shifted and blotchy (a smooth random tint);
- panoptic: segments eroded, merged with a neighbour and mislabelled.
"""

from dataclasses import dataclass

import numpy as np
from PIL import Image

from trainer.data.shape_captions import describe_scene
from trainer.data.shapes import CLASS_NAMES, COLOR_NAMES, Scene


@dataclass(frozen=True)
class BoxErrors:
    """How a simulated detector gets ground truth wrong."""

    name: str
    jitter: float  # box edge noise, as a fraction of the box's size
    miss: float  # chance to drop an object
    wrong_class: float  # chance to report another class
    spurious: float  # mean number of invented boxes per image

    def describe(self) -> str:
        return (f"Ground truth perturbed: jitter {self.jitter}, miss {self.miss}, wrong class "
                f"{self.wrong_class}, spurious {self.spurious}/image.")


@dataclass(frozen=True)
class CaptionErrors:
    """How a simulated captioner gets a scene wrong: chances per object or per scene."""

    name: str
    colour: float  # chance to name an object's colour wrong
    shape: float  # chance to name an object's shape wrong
    count: float  # chance to leave an object out or to describe one that is not there

    def describe(self) -> str:
        return (f"Ground truth perturbed: wrong colour {self.colour}, wrong shape {self.shape} "
                f"per object, wrong count {self.count} per image.")


@dataclass(frozen=True)
class ColourErrors:
    """How a simulated colorizer gets the colours wrong (the brightness is always right)."""

    name: str
    saturation: float  # share of the true chroma kept
    hue_deg: float  # hue turned by this many degrees, either way
    blotch: float  # strength of a smooth random tint over the image (YIQ units)

    def describe(self) -> str:
        return (f"True colours degraded: saturation x{self.saturation}, hue shifted "
                f"{self.hue_deg:g} deg, blotches {self.blotch:g}.")


@dataclass(frozen=True)
class SegmentErrors:
    """How a simulated panoptic model gets the segments wrong."""

    name: str
    erode: int  # pixels taken off every segment's border
    merge: float  # chance per object to be merged into its nearest neighbour's segment
    mislabel: float  # chance per segment to get another category

    def describe(self) -> str:
        return (f"Ground truth perturbed: eroded {self.erode} px, merged {self.merge}, "
                f"mislabelled {self.mislabel}.")


DETECTION_LEVELS = (
    BoxErrors("shapes-detector-good", jitter=0.04, miss=0.0, wrong_class=0.03, spurious=0.1),
    BoxErrors("shapes-detector-fair", jitter=0.12, miss=0.15, wrong_class=0.12, spurious=0.5),
    BoxErrors("shapes-detector-poor", jitter=0.25, miss=0.35, wrong_class=0.3, spurious=1.2),
)
CAPTION_LEVELS = (
    CaptionErrors("shapes-captioner-good", colour=0.08, shape=0.05, count=0.1),
    CaptionErrors("shapes-captioner-fair", colour=0.3, shape=0.25, count=0.4),
    CaptionErrors("shapes-captioner-poor", colour=0.6, shape=0.5, count=0.8),
)
COLOUR_LEVELS = (
    ColourErrors("shapes-colorizer-good", saturation=0.85, hue_deg=10, blotch=6),
    ColourErrors("shapes-colorizer-fair", saturation=0.5, hue_deg=40, blotch=18),
    ColourErrors("shapes-colorizer-poor", saturation=0.2, hue_deg=110, blotch=35),
)
SEGMENT_LEVELS = (
    SegmentErrors("shapes-segmenter-good", erode=1, merge=0.1, mislabel=0.05),
    SegmentErrors("shapes-segmenter-fair", erode=2, merge=0.35, mislabel=0.2),
    SegmentErrors("shapes-segmenter-poor", erode=4, merge=0.7, mislabel=0.45),
)


def _other(rng: np.random.Generator, count: int, index: int) -> int:
    """A random index in range(count) other than `index`."""
    return int(rng.choice([i for i in range(count) if i != index]))


# --- detection ---


def detection_rows(scene: Scene, errors: BoxErrors, *, seed: int) -> list[tuple]:
    """The scene's boxes made wrong the way `errors` says, as (x0, y0, x1, y1, class index,
    score) rows in pixels (corners not yet ordered nor clipped)."""
    rng = np.random.default_rng(seed)
    size = scene.image.shape[0]
    rows = []
    for (y0, x0, y1, x1), cls in zip(scene.boxes.tolist(), scene.classes.tolist(), strict=True):
        if rng.random() < errors.miss:
            continue
        h, w = y1 - y0, x1 - x0
        y0, y1 = np.array([y0, y1]) + rng.normal(0, errors.jitter * h, 2)
        x0, x1 = np.array([x0, x1]) + rng.normal(0, errors.jitter * w, 2)
        if rng.random() < errors.wrong_class:
            cls = _other(rng, len(CLASS_NAMES), cls)
        rows.append((x0, y0, x1, y1, cls, rng.uniform(0.6, 0.99)))
    for _ in range(rng.poisson(errors.spurious)):
        side = rng.uniform(0.1, 0.35) * size
        x0, y0 = rng.uniform(0, size - side, 2)
        rows.append((x0, y0, x0 + side, y0 + side, int(rng.integers(len(CLASS_NAMES))),
                     rng.uniform(0.2, 0.7)))
    return rows


# --- captioning ---


def caption(scene: Scene, errors: CaptionErrors, *, seed: int, paraphrase: int) -> str:
    """Paraphrase `paraphrase` (0-4, see `describe_scene`) of the scene with its objects'
    colours, shapes and number made wrong the way `errors` says."""
    rng = np.random.default_rng(seed)
    boxes = scene.boxes.tolist()
    shapes = [CLASS_NAMES[c] for c in scene.classes.tolist()]
    colours = [COLOR_NAMES[c] for c in scene.colors.tolist()]
    for k in range(len(shapes)):
        if rng.random() < errors.colour:
            colours[k] = COLOR_NAMES[_other(rng, len(COLOR_NAMES), COLOR_NAMES.index(colours[k]))]
        if rng.random() < errors.shape:
            shapes[k] = CLASS_NAMES[_other(rng, len(CLASS_NAMES), CLASS_NAMES.index(shapes[k]))]
    if rng.random() < errors.count:
        if len(shapes) > 1 and rng.random() < 0.5:
            gone = int(rng.integers(len(shapes)))
            del boxes[gone], shapes[gone], colours[gone]
        else:  # an object that is not there, somewhere in the image
            size = scene.image.shape[0]
            side = rng.uniform(0.15, 0.35) * size
            y0, x0 = rng.uniform(0, size - side, 2).tolist()
            boxes.append([y0, x0, y0 + side, x0 + side])
            shapes.append(CLASS_NAMES[int(rng.integers(len(CLASS_NAMES)))])
            colours.append(COLOR_NAMES[int(rng.integers(len(COLOR_NAMES)))])
    captions = describe_scene(boxes, shapes, colours, scene.image.shape[0])
    return captions[paraphrase % len(captions)]


# --- colorization ---

_TO_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
                   dtype=np.float32)
_FROM_YIQ = np.linalg.inv(_TO_YIQ).astype(np.float32)


def _smooth_field(rng: np.random.Generator, size: int, cells: int = 5) -> np.ndarray:
    """(size, size) standard-normal noise on a coarse grid, bilinearly enlarged."""
    coarse = Image.fromarray(rng.standard_normal((cells, cells)).astype(np.float32), mode="F")
    return np.asarray(coarse.resize((size, size), Image.BILINEAR), dtype=np.float32)


def colorized(scene: Scene, errors: ColourErrors, *, seed: int) -> np.ndarray:
    """(H, W, 3) uint8: the scene's colours made wrong the way `errors` says, its luma kept."""
    rng = np.random.default_rng(seed)
    yiq = scene.image.astype(np.float32) @ _TO_YIQ.T
    angle = np.radians(errors.hue_deg) * rng.choice([-1.0, 1.0])
    cos, sin = np.cos(angle) * errors.saturation, np.sin(angle) * errors.saturation
    i, q = yiq[..., 1].copy(), yiq[..., 2].copy()
    yiq[..., 1] = cos * i - sin * q
    yiq[..., 2] = sin * i + cos * q
    size = scene.image.shape[0]
    for channel in (1, 2):
        yiq[..., channel] += errors.blotch * _smooth_field(rng, size)
    return np.clip(yiq @ _FROM_YIQ.T + 0.5, 0, 255).astype(np.uint8)


# --- panoptic ---


def panoptic_truth(scene: Scene) -> tuple[np.ndarray, list[dict]]:
    """The scene's segment ids ((H, W): 0 unlabelled, k + 1 object k) and COCO segments."""
    present = set(np.unique(scene.panoptic).tolist()) - {0}
    return scene.panoptic.astype(np.int64), [
        {"id": k + 1, "category_id": int(cls) + 1}
        for k, cls in enumerate(scene.classes.tolist()) if k + 1 in present
    ]


def _eroded(ids: np.ndarray, pixels: int) -> np.ndarray:
    """Every segment's border `pixels` deep unlabelled: a pixel keeps its id while its four
    neighbours (the image's edge counts as the same segment) share it."""
    for _ in range(pixels):
        padded = np.pad(ids, 1, mode="edge")
        same = ((padded[:-2, 1:-1] == ids) & (padded[2:, 1:-1] == ids)
                & (padded[1:-1, :-2] == ids) & (padded[1:-1, 2:] == ids))
        ids = np.where(same, ids, 0)
    return ids


def segments(scene: Scene, errors: SegmentErrors, *, seed: int) -> tuple[np.ndarray, list[dict]]:
    """The scene's segments made wrong the way `errors` says, as in `panoptic_truth`."""
    rng = np.random.default_rng(seed)
    ids, truth = panoptic_truth(scene)
    owner = {segment["id"]: segment["id"] for segment in truth}  # segment -> the one it joined
    centres = {k + 1: ((y0 + y1) / 2, (x0 + x1) / 2)
               for k, (y0, x0, y1, x1) in enumerate(scene.boxes.tolist())}
    for segment_id in list(owner):
        if len(set(owner.values())) > 1 and rng.random() < errors.merge:
            others = [s for s in owner if owner[s] != owner[segment_id]]
            cy, cx = centres[segment_id]
            nearest = min(others, key=lambda s: (centres[s][0] - cy) ** 2
                          + (centres[s][1] - cx) ** 2)
            joined, into = owner[segment_id], owner[nearest]
            owner = {s: into if o == joined else o for s, o in owner.items()}
    lookup = np.zeros(int(ids.max()) + 1, dtype=np.int64)
    for segment_id, joined in owner.items():
        lookup[segment_id] = joined
    ids = _eroded(lookup[ids], errors.erode)
    category = {segment["id"]: segment["category_id"] for segment in truth}
    kept = []
    for segment_id in sorted(set(np.unique(ids).tolist()) - {0}):
        label = category[segment_id]
        if rng.random() < errors.mislabel:
            label = _other(rng, len(CLASS_NAMES), label - 1) + 1
        kept.append({"id": segment_id, "category_id": label})
    return ids, kept
