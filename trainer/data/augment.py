"""Augmentation of a data folder's training images, boxes moved along (Pix2seq's recipe).

A user's folder is a fixed set of images seen many times over, so each time an image is drawn
for training it is mirrored left to right with probability one half and scale-jittered: resized
by a random factor, then cropped (larger) or padded (smaller) back to its own size at a random
offset. Boxes are moved with the pixels; a box cut to less than `MIN_VISIBLE` of its area is
dropped (a sliver of an object is a poor target). Synthetic Shapes needs none of this: every
batch is fresh scenes.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image

from trainer.data.detection import IMAGE_MEAN, DetectionExample

MIN_VISIBLE = 0.25  # share of a box's area that must stay in the image to keep the box
# Padding is the mean colour, which the model's input normalisation turns into zeros.
PAD = np.array([round(255 * m) for m in IMAGE_MEAN], dtype=np.uint8)


def flip_horizontal(example: DetectionExample) -> DetectionExample:
    """The example mirrored left to right."""
    width = example.image.shape[1]
    boxes = example.boxes.copy()
    boxes[:, 1], boxes[:, 3] = width - example.boxes[:, 3], width - example.boxes[:, 1]
    return dataclasses.replace(example, image=np.ascontiguousarray(example.image[:, ::-1]),
                               boxes=boxes)


def scale_jitter(example: DetectionExample, scale: float, offset: tuple[float, float]
                 ) -> DetectionExample:
    """The image resized by `scale`, then cropped or padded back to its size; `offset` (each in
    [0, 1]) places the crop window in the larger image, or the smaller image on the canvas."""
    height, width = example.image.shape[:2]
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    resized = np.asarray(Image.fromarray(example.image).resize((new_w, new_h), Image.BILINEAR))
    # Where the resized image's origin lands on the output (negative: it is cropped there).
    dy, dx = round((height - new_h) * offset[0]), round((width - new_w) * offset[1])
    canvas = np.empty_like(example.image)
    canvas[:] = PAD
    top, left = max(0, dy), max(0, dx)
    bottom, right = min(height, dy + new_h), min(width, dx + new_w)
    canvas[top:bottom, left:right] = resized[top - dy : bottom - dy, left - dx : right - dx]
    sy, sx = new_h / height, new_w / width
    moved = example.boxes * np.array([sy, sx, sy, sx], dtype=np.float32) + \
        np.array([dy, dx, dy, dx], dtype=np.float32)
    clipped = np.clip(moved, 0, np.array([height, width, height, width], dtype=np.float32))
    keep = _area(clipped) >= MIN_VISIBLE * _area(moved)
    keep &= _area(clipped) > 0
    return dataclasses.replace(example, image=canvas, boxes=clipped[keep].astype(np.float32),
                               classes=example.classes[keep])


def _area(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, 2] - boxes[:, 0]).clip(0) * (boxes[:, 3] - boxes[:, 1]).clip(0)


def augment(example: DetectionExample, rng: np.random.Generator, scale_min: float,
            scale_max: float) -> DetectionExample:
    """A random flip (p = 1/2) and a scale jitter in [scale_min, scale_max] of `example`."""
    if rng.random() < 0.5:
        example = flip_horizontal(example)
    scale = rng.uniform(scale_min, scale_max)
    return scale_jitter(example, scale, (rng.random(), rng.random()))
