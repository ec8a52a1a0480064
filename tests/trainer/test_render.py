"""Renderers for the annotator UI: caption text, colorized PNG, panoptic overlay PNG."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from trainer.data.coco_panoptic import scene_panoptic
from trainer.data.shapes import generate_scene, scene_seed
from trainer.render import (
    FILL_ALPHA,
    OUTLINE,
    PALETTE,
    caption_text,
    colorized_png,
    panoptic_overlay_png,
)


def _read(png: bytes) -> Image.Image:
    assert png.startswith(b"\x89PNG")
    return Image.open(io.BytesIO(png))


def test_caption_text() -> None:
    assert caption_text("two shapes  a red circle\n") == "Two shapes a red circle."
    assert caption_text("Done?") == "Done?"
    assert caption_text("   ") == ""
    with pytest.raises(TypeError):
        caption_text(None)  # type: ignore[arg-type]


def test_colorized_png_keeps_the_pixels() -> None:
    rgb = torch.rand(3, 6, 5, generator=torch.Generator().manual_seed(0))
    pixels = np.asarray(_read(colorized_png(rgb)).convert("RGB"))
    assert pixels.shape == (6, 5, 3)
    expected = (rgb * 255).round().byte().permute(1, 2, 0).numpy()
    assert np.array_equal(pixels, expected)
    scene = generate_scene(scene_seed("val", 0))
    assert np.array_equal(np.asarray(_read(colorized_png(scene.image))), scene.image)
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        colorized_png(torch.rand(1, 6, 5))


def test_panoptic_overlay_fills_categories_and_outlines_segments() -> None:
    panoptic = np.zeros((6, 8, 2), dtype=np.int64)  # background: category 0, instance 0
    panoptic[:, 4:] = (3, 1)  # two instances of category 3, side by side in columns 4-5, 6-7
    panoptic[:, 6:] = (3, 2)
    panoptic[5, 0] = (-1, 0)  # one void pixel
    overlay = np.asarray(_read(panoptic_overlay_png(panoptic)))
    assert overlay.shape == (6, 8, 4)
    assert tuple(overlay[0, 0]) == (*PALETTE[0], FILL_ALPHA)
    assert tuple(overlay[0, 4]) == (*PALETTE[3], FILL_ALPHA)
    assert tuple(overlay[0, 7]) == (*PALETTE[3], FILL_ALPHA)
    assert overlay[5, 0, 3] == 0  # void stays clear
    # Outlines where segments meet: background | instance 1 | instance 2 (same category).
    for column in (3, 5):
        assert (overlay[:, column] == (*OUTLINE, 255)).all()
    assert (overlay[:4, 1, 3] == FILL_ALPHA).all()  # inside a segment, no outline


def test_panoptic_composited_over_a_scene() -> None:
    scene = generate_scene(scene_seed("val", 1))
    panoptic = scene_panoptic(scene)
    composite = np.asarray(_read(panoptic_overlay_png(panoptic, scene.image)))
    assert composite.shape == scene.image.shape
    boundary = np.zeros(panoptic.shape[:2], dtype=bool)
    boundary[:, :-1] |= (panoptic[:, :-1] != panoptic[:, 1:]).any(-1)
    boundary[:-1] |= (panoptic[:-1] != panoptic[1:]).any(-1)
    assert boundary.any() and (composite[boundary] == OUTLINE).all()
    alpha = FILL_ALPHA / 255
    for y, x in np.argwhere(~boundary)[:: 97]:  # interior pixels, blended with the palette
        blend = scene.image[y, x] * (1 - alpha) + PALETTE[panoptic[y, x, 0]] * alpha
        assert np.abs(composite[y, x].astype(int) - np.round(blend)).max() <= 1
    with pytest.raises(ValueError, match="panoptic map"):
        panoptic_overlay_png(panoptic, scene.image[:10])
    with pytest.raises(ValueError, match=r"\(H, W, 2\)"):
        panoptic_overlay_png(panoptic[..., 0])
