"""Renderers of task outputs for the annotator UI: plain functions from trainer outputs to what
the platform stores for a candidate (docs/api.md, "Candidate outputs").

- captioning: `caption_text` (the caption as a sentence);
- colorization: `colorized_png` (the colorized image as PNG bytes);
- panoptic: `panoptic_overlay_png` (each segment in its category's colour, translucent, with
  1-pixel outlines where segments meet), either as an RGBA overlay to lay over the image (the
  UI shows a translucent overlay as it is) or composited over the image into an RGB PNG.

Category colours are the UI's palette (Tableau 10, frontend/static/annotate/render/colors.js),
picked by category position, so a rendered overlay matches the legend of the annotate page.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

# Tableau 10, in the order of the UI's palette.
PALETTE = np.array(
    [
        (0x4E, 0x79, 0xA7), (0xF2, 0x8E, 0x2B), (0xE1, 0x57, 0x59), (0x76, 0xB7, 0xB2),
        (0x59, 0xA1, 0x4F), (0xED, 0xC9, 0x48), (0xB0, 0x7A, 0xA1), (0xFF, 0x9D, 0xA7),
        (0x9C, 0x75, 0x5F), (0xBA, 0xB0, 0xAC),
    ],
    dtype=np.uint8,
)
FILL_ALPHA = 110  # of 255, as the UI: the image stays readable under the colours
OUTLINE = (255, 255, 255)


def caption_text(caption: str) -> str:
    """A caption as a sentence: single spaces, first letter capitalised, a full stop at the
    end ("two shapes  a red circle" -> "Two shapes a red circle."); "" stays "" (a model may
    say nothing, and the annotator should see that)."""
    if not isinstance(caption, str):
        raise TypeError(f"a caption must be a string, got {type(caption).__name__}")
    text = " ".join(caption.split())
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _rgb_uint8(image: np.ndarray | torch.Tensor, name: str) -> np.ndarray:
    """(H, W, 3) uint8 from (H, W, 3) uint8 or (3, H, W) float in [0, 1] (the trainer's)."""
    if isinstance(image, torch.Tensor):
        if image.ndim != 3 or image.shape[0] != 3 or not image.is_floating_point():
            raise ValueError(f"{name} tensor must be (3, H, W) float in [0, 1], "
                             f"got {tuple(image.shape)} {image.dtype}")
        return (image.detach().cpu().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"{name} array must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    return image


def colorized_png(image: np.ndarray | torch.Tensor) -> bytes:
    """PNG bytes of a colorized image: (3, H, W) float in [0, 1] or (H, W, 3) uint8."""
    return _png(np.ascontiguousarray(_rgb_uint8(image, "image")))


def panoptic_overlay_png(
    panoptic: np.ndarray, image: np.ndarray | torch.Tensor | None = None
) -> bytes:
    """PNG of a panoptic map (H, W, 2) of (category position, instance), category -1 = void.

    Each segment (a distinct pair) is filled with its category's palette colour at FILL_ALPHA,
    void stays clear, and a labelled pixel whose right or lower neighbour belongs to another
    segment is drawn opaque in OUTLINE, so instances of one category stay apart. Without
    `image`: an RGBA overlay. With `image` (same H, W): the overlay composited over it, an RGB
    PNG.
    """
    panoptic = np.asarray(panoptic)
    if panoptic.ndim != 3 or panoptic.shape[2] != 2 or not np.issubdtype(panoptic.dtype,
                                                                         np.integer):
        raise ValueError(f"panoptic must be an (H, W, 2) integer map, got {panoptic.shape} "
                         f"{panoptic.dtype}")
    category, instance = panoptic[..., 0].astype(np.int64), panoptic[..., 1].astype(np.int64)
    if category.size and category.min() < -1:
        raise ValueError("categories must be >= -1 (void)")
    height, width = category.shape
    overlay = np.zeros((height, width, 4), dtype=np.uint8)
    labelled = category >= 0
    overlay[labelled, :3] = PALETTE[category[labelled] % len(PALETTE)]
    overlay[labelled, 3] = FILL_ALPHA
    # One key per segment; compared with the right and lower neighbours for the outlines.
    key = (category + 1) * (int(instance.max(initial=0)) + 1) + instance
    edge = np.zeros((height, width), dtype=bool)
    edge[:, :-1] |= key[:, :-1] != key[:, 1:]
    edge[:-1] |= key[:-1] != key[1:]
    overlay[edge & labelled] = (*OUTLINE, 255)
    if image is None:
        return _png(overlay)
    base = _rgb_uint8(image, "image")
    if base.shape[:2] != (height, width):
        raise ValueError(f"image is {base.shape[:2]}, the panoptic map {(height, width)}")
    alpha = overlay[..., 3:].astype(np.float32) / 255.0
    mixed = base.astype(np.float32) * (1 - alpha) + overlay[..., :3].astype(np.float32) * alpha
    return _png(np.round(mixed).astype(np.uint8))
