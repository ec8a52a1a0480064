"""Synthetic Shapes: a deterministic, seeded generator of small RGB scenes of coloured shapes.

Every scene carries what the four tasks of the paper need: tight boxes with classes (detection),
visible instance masks and a panoptic map (panoptic segmentation), several paraphrased captions
(captioning) and the greyscale image (colorization). `generate_scene(seed, config)` is a pure
function of its arguments and draws from `numpy.random.default_rng(seed)` only, so a seed names a
scene; `scene_seed(split, index)` gives the fixed, disjoint train / val / test splits.

Objects are painted one over the other; a placement is rejected when it would hide more than
`max_occlusion` of an object already in the scene, so every annotation is mostly visible.
Masks are computed with numpy on coordinate grids of each object's bounding square, never per
pixel in Python, because training draws fresh scenes for every batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

from trainer.data.shape_captions import describe_scene

CLASS_NAMES: tuple[str, ...] = (
    "circle", "square", "triangle", "diamond", "hexagon", "star", "cross", "ring",
)
COLOR_NAMES: tuple[str, ...] = (
    "red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink", "white", "black",
)
# Base RGB of each named colour; objects get a jittered copy, so a name covers a small range.
COLOR_RGB = np.array(
    [
        (215, 35, 35), (245, 135, 25), (240, 215, 35), (40, 165, 55), (35, 200, 210),
        (35, 70, 215), (135, 55, 195), (240, 125, 190), (245, 245, 245), (20, 20, 20),
    ],
    dtype=np.float32,
)
COLOR_RGB_LISTS = COLOR_RGB.tolist()
BACKGROUND_KINDS: tuple[str, ...] = ("plain", "gradient", "texture")
SPLITS: tuple[str, ...] = ("train", "val", "test")
SPLIT_SIZES: dict[str, int] = {"val": 500, "test": 1000}


@dataclass(frozen=True)
class ShapesConfig:
    """Everything that sets a scene's content and difficulty (sizes are fractions of the image)."""

    image_size: int = 64  # side of the square image in pixels
    min_objects: int = 1  # fewest objects a scene tries to place (at least one is always placed)
    max_objects: int = 6  # most objects per scene (drawn uniformly in [min, max]); up to 8 or more
    min_object_size: float = 0.14  # smallest object diameter, as a fraction of image_size
    max_object_size: float = 0.42  # largest object diameter, as a fraction of image_size
    max_occlusion: float = 0.5  # largest fraction of an object later objects may hide; 0 = none
    max_rotation_deg: float = 25.0  # shapes turn by up to this many degrees either way
    aspect_jitter: float = 0.15  # shapes stretch along one axis by up to this factor either way
    color_jitter: float = 18.0  # per-channel RGB jitter around a named colour
    min_contrast: float = 90.0  # least RGB distance between an object's colour and the background
    backgrounds: tuple[str, ...] = BACKGROUND_KINDS  # background kinds drawn uniformly
    noise_std: float = 5.0  # std of Gaussian pixel noise added to the whole image (0 = none)
    placement_tries: int = 8  # tries to place each object before leaving it out

    def __post_init__(self) -> None:
        if self.image_size < 16:
            raise ValueError(f"image_size must be at least 16, got {self.image_size}")
        if not 1 <= self.min_objects <= self.max_objects:
            raise ValueError(
                f"need 1 <= min_objects <= max_objects, got {self.min_objects}, {self.max_objects}"
            )
        if not 0 < self.min_object_size <= self.max_object_size <= 0.9:
            raise ValueError("need 0 < min_object_size <= max_object_size <= 0.9")
        if self.min_object_size * self.image_size < 6:
            # Below ~6 px across, a shape has too few pixels to tell its class.
            raise ValueError("min_object_size * image_size must be at least 6 pixels")
        if not 0 <= self.min_contrast <= 180:
            # Some named colour is over 190 away from any RGB background (checked on a grid),
            # so up to 180 every object finds a colour and the first object always fits.
            raise ValueError(f"min_contrast must be in [0, 180], got {self.min_contrast}")
        if self.placement_tries < 1:
            raise ValueError(f"placement_tries must be at least 1, got {self.placement_tries}")
        if not 0 <= self.max_occlusion <= 0.7:
            # Above 0.7 an object could keep under 30% of itself: too little to annotate.
            raise ValueError(f"max_occlusion must be in [0, 0.7], got {self.max_occlusion}")
        unknown = set(self.backgrounds) - set(BACKGROUND_KINDS)
        if not self.backgrounds or unknown:
            raise ValueError(f"backgrounds must be a non-empty subset of {BACKGROUND_KINDS}")


DEFAULT_CONFIG = ShapesConfig()


@dataclass(frozen=True, eq=False)
class Scene:
    """One generated scene; every annotation describes the visible part of an object.

    Boxes are `[ymin, xmin, ymax, xmax]` pixel edges (a pixel i spans [i, i + 1)), so a box is
    the tight box of its mask: rows ymin..ymax-1 and columns xmin..xmax-1. Instance k is painted
    after instance k - 1 (later instances are in front).
    """

    image: np.ndarray  # (H, W, 3) uint8 RGB
    gray: np.ndarray  # (H, W) uint8, ITU-R 601 luma of `image`
    boxes: np.ndarray  # (K, 4) float32 [ymin, xmin, ymax, xmax] pixels
    classes: np.ndarray  # (K,) int64 indices into CLASS_NAMES
    colors: np.ndarray  # (K,) int64 indices into COLOR_NAMES
    masks: np.ndarray  # (K, H, W) bool visible pixels
    panoptic: np.ndarray  # (H, W) int32: 0 background, k + 1 instance k
    captions: tuple[str, ...]  # at least five paraphrased descriptions in words
    seed: int


# --- shapes: each maps rotated unit coordinates (u, v), object radius 1, to an inside mask ---

_SQRT3 = float(np.sqrt(3.0))


def _circle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u * u + v * v <= 0.92


def _square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.maximum(np.abs(u), np.abs(v)) <= 0.72


def _triangle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (v <= 0.5) & (_SQRT3 * np.abs(u) - v <= 1.0)


def _diamond(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    # Taller than wide, so that a diamond is not just a square turned by 45 degrees.
    return np.abs(u) * (1 / 0.68) + np.abs(v) <= 1.0


def _hexagon(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    au, av = np.abs(u), np.abs(v)
    return (av <= 0.95 * _SQRT3 / 2) & (_SQRT3 * au + av <= 0.95 * _SQRT3)


def _star(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    # Five points: the radius limit is a triangle wave in the angle between 0.42 and 1.
    phase = (np.arctan2(u, -v) * (5 / (2 * np.pi))) % 1.0
    limit = 0.42 + 0.58 * np.abs(1.0 - 2.0 * phase)
    return u * u + v * v <= limit * limit


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    au, av = np.abs(u), np.abs(v)
    return ((au <= 0.3) & (av <= 0.92)) | ((av <= 0.3) & (au <= 0.92))


def _ring(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    r2 = u * u + v * v
    return (r2 <= 0.92) & (r2 >= 0.3)


_SHAPES: tuple[Callable[[np.ndarray, np.ndarray], np.ndarray], ...] = (
    _circle, _square, _triangle, _diamond, _hexagon, _star, _cross, _ring,
)
assert len(_SHAPES) == len(CLASS_NAMES)


# --- backgrounds ---


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates, cached because every scene of a size uses the same grid."""
    centres = np.arange(size, dtype=np.float32) + 0.5
    return centres[:, None], centres[None, :]


@lru_cache(maxsize=8)
def _upsample_matrix(small: int, size: int) -> np.ndarray:
    """(size, small) bilinear interpolation weights, for smooth low-frequency textures."""
    pos = np.clip((np.arange(size) + 0.5) * small / size - 0.5, 0, small - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, small - 1)
    frac = (pos - lo).astype(np.float32)
    weights = np.zeros((size, small), dtype=np.float32)
    weights[np.arange(size), lo] += 1 - frac
    weights[np.arange(size), hi] += frac
    return weights


def _background_colour(draws: list[float]) -> np.ndarray:
    """A muted colour from four uniform [0, 1) draws: a grey level with a tint, so saturated
    objects stand out by hue while white and black objects still need the contrast check."""
    grey = 30.0 + 195.0 * draws[0]
    return np.array([min(max(grey + 70.0 * d - 35.0, 0.0), 255.0) for d in draws[1:4]],
                    dtype=np.float32)


def _background(rng: np.random.Generator, config: ShapesConfig) -> np.ndarray:
    """(size, size, 3) float32 background: a plain colour, a linear gradient, or a texture."""
    size = config.image_size
    draws = rng.random(10).tolist()
    kind = config.backgrounds[int(draws[0] * len(config.backgrounds))]
    base = _background_colour(draws[1:5])
    if kind == "plain":
        image = np.empty((size, size, 3), dtype=np.float32)
        image[...] = base
        return image
    if kind == "gradient":
        # From `base` to `other` along a random direction, spanning the whole image.
        angle = 2 * math.pi * draws[9]
        cos, sin = math.cos(angle), math.sin(angle)
        corners = [cos * x + sin * y for x in (0.5, size - 0.5) for y in (0.5, size - 0.5)]
        low, scale = min(corners), 1.0 / (max(corners) - min(corners))
        ys, xs = _grid(size)
        ramp = (sin * scale) * ys + ((cos * scale) * xs - low * scale)
        return ramp[..., None] * (_background_colour(draws[5:9]) - base) + base
    small = 6
    field = rng.normal(0.0, 28.0, size=(small, small, 3)).astype(np.float32)
    up = _upsample_matrix(small, size)
    # Per channel: up @ field @ up.T (a batched matmul; einsum is far slower here).
    texture = (up @ field.transpose(2, 0, 1) @ up.T).transpose(1, 2, 0)
    return np.clip(base + texture, 0, 255)


@lru_cache(maxsize=8)
def _noise_table(n: int) -> np.ndarray:
    """Fixed standard-normal numbers; drawing fresh ones per scene took a third of the time."""
    return np.random.default_rng(0x5EED).standard_normal(4 * n, dtype=np.float32)


def _noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Pixel noise: a random window of the fixed table (deterministic given the scene's rng)."""
    n = int(np.prod(shape))
    start = int(rng.integers(3 * n))
    return _noise_table(n)[start : start + n].reshape(shape)


# --- placement ---


def _place_objects(
    rng: np.random.Generator, config: ShapesConfig, image: np.ndarray
) -> tuple[np.ndarray, list[int], list[int]]:
    """Paint shapes over the background `image` (in place) and into an owner map.

    Returns the owner map (-1 = background, k = instance k is on top there) and, per placed
    object, its class and colour name. A try is rejected when it would hide more than
    `max_occlusion` of an earlier object. The config's checks guarantee the first object always
    fits, so K >= 1.
    """
    size = config.image_size
    owner = np.full((size, size), -1, dtype=np.int64)
    full_area: list[int] = []  # pixels of each placed shape
    visible: list[int] = []  # of which still visible
    classes: list[int] = []
    colors: list[int] = []
    ys, xs = _grid(size)
    wanted = int(rng.integers(config.min_objects, config.max_objects + 1))
    max_turn = math.radians(config.max_rotation_deg)
    min_visible = 1.0 - config.max_occlusion
    for _ in range(wanted):
        # One draw per object, as Python floats: numpy's per-call and per-scalar overheads
        # cost more than the arithmetic when each number had its own.
        draws = rng.random(1 + 9 * config.placement_tries).tolist()
        cls = int(draws[0] * len(CLASS_NAMES))
        for try_ in range(config.placement_tries):
            r = draws[1 + 9 * try_ : 10 + 9 * try_]
            radius = 0.5 * size * _lerp(config.min_object_size, config.max_object_size, r[0])
            # The shape fits inside its radius, so the centre keeps the whole shape in frame.
            cy, cx = _lerp(radius, size - radius, r[1]), _lerp(radius, size - radius, r[2])
            turn = _lerp(-max_turn, max_turn, r[3])
            stretch = 1.0 + _lerp(-config.aspect_jitter, config.aspect_jitter, r[4])
            y0, y1 = int(cy - radius), min(math.ceil(cy + radius), size)
            x0, x1 = int(cx - radius), min(math.ceil(cx + radius), size)
            dy, dx = ys[y0:y1] - cy, xs[:, x0:x1] - cx
            # Rotate by `turn`, stretch, and scale the radius to 1, folded into four factors.
            cos, sin = math.cos(turn) / radius, math.sin(turn) / radius
            u = (cos * stretch) * dx + (sin * stretch) * dy
            v = (cos / stretch) * dy - (sin / stretch) * dx
            inside = _SHAPES[cls](u, v)
            area = int(inside.sum())
            if area < 4:
                continue
            window = owner[y0:y1, x0:x1]
            covered = np.bincount(window[inside] + 1, minlength=len(classes) + 1)[1:].tolist()
            left = [seen - hidden for seen, hidden in zip(visible, covered, strict=True)]
            if any(seen < min_visible * full for seen, full in zip(left, full_area, strict=True)):
                continue
            colour = _pick_colour(config, image[int(cy), int(cx)].tolist(), r[5], r[6:])
            if colour is None:
                continue
            window[inside] = len(classes)
            image[y0:y1, x0:x1][inside] = colour[1]
            visible = [*left, area]
            full_area.append(area)
            classes.append(cls)
            colors.append(colour[0])
            break
    return owner, classes, colors


def _lerp(lo: float, hi: float, t: float) -> float:
    return lo + (hi - lo) * t


def _pick_colour(
    config: ShapesConfig, ground: list[float], choice: float, jitter: list[float]
) -> tuple[int, np.ndarray] | None:
    """A named colour far enough from the background at the object's centre, and its RGB.

    `choice` and `jitter` are uniform [0, 1) draws that pick the name and jitter its RGB. Plain
    Python: for ten colours it is several times faster than numpy.
    """
    least = config.min_contrast**2
    g0, g1, g2 = ground
    allowed = [
        name for name, (c0, c1, c2) in enumerate(COLOR_RGB_LISTS)
        if (c0 - g0) ** 2 + (c1 - g1) ** 2 + (c2 - g2) ** 2 >= least
    ]
    if not allowed:
        return None
    name = allowed[int(choice * len(allowed))]
    rgb = [min(max(c + config.color_jitter * (2 * j - 1), 0.0), 255.0)
           for c, j in zip(COLOR_RGB_LISTS[name], jitter, strict=True)]
    return name, np.array(rgb, dtype=np.float32)


# --- the scene ---


def generate_scene(seed: int, config: ShapesConfig = DEFAULT_CONFIG) -> Scene:
    """The scene named by `seed` under `config`: a pure function of both arguments."""
    rng = np.random.default_rng(seed)
    image = _background(rng, config)
    owner, classes, colors = _place_objects(rng, config, image)
    k = len(classes)
    if config.noise_std > 0:
        image += config.noise_std * _noise(rng, image.shape)
    image = np.clip(image + 0.5, 0, 255).astype(np.uint8)
    gray = (image @ np.array([0.299, 0.587, 0.114], dtype=np.float32) + 0.5).astype(np.uint8)

    masks = owner[None] == np.arange(k)[:, None, None]
    rows, cols = masks.any(axis=2), masks.any(axis=1)
    size = config.image_size
    boxes = np.stack(
        [
            rows.argmax(axis=1), cols.argmax(axis=1),
            size - rows[:, ::-1].argmax(axis=1), size - cols[:, ::-1].argmax(axis=1),
        ],
        axis=1,
    ).astype(np.float32).reshape(k, 4)
    return Scene(
        image=image,
        gray=gray,
        boxes=boxes,
        classes=np.asarray(classes, dtype=np.int64),
        colors=np.asarray(colors, dtype=np.int64),
        masks=masks,
        panoptic=(owner + 1).astype(np.int32),
        captions=describe_scene(
            boxes.tolist(), [CLASS_NAMES[c] for c in classes], [COLOR_NAMES[c] for c in colors],
            size, noun=("shapes", "objects")[int(rng.integers(2))],
        ),
        seed=seed,
    )


def scene_seed(split: str, index: int) -> int:
    """Seed of scene `index` of `split`; the splits interleave, so they never share a seed."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if index < 0:
        raise ValueError(f"index must be non-negative, got {index}")
    return len(SPLITS) * index + SPLITS.index(split)


def generate_split(split: str, n: int, config: ShapesConfig = DEFAULT_CONFIG) -> list[Scene]:
    """The first `n` scenes of a split (val and test are fixed sets; see SPLIT_SIZES)."""
    return [generate_scene(scene_seed(split, i), config) for i in range(n)]


def scene_to_pil(scene: Scene) -> Image.Image:
    """The scene's image as a PIL image (for viewing and writing files)."""
    return Image.fromarray(scene.image)
