"""COCO panoptic PNGs: reading segment ids, and drawing the overlay the annotator UI shows.

A COCO panoptic PNG stores each pixel's segment id as its colour, id = R + 256 G + 256^2 B, with
0 for unlabelled pixels. The overlay is an RGBA PNG of the same size: each segment filled with a
translucent colour of its own and outlined in the same colour, opaque, so neighbouring segments
of one class stay apart.
"""

import colorsys
import io

import numpy as np
from PIL import Image

FILL_ALPHA = 110
OUTLINE_ALPHA = 255
_GOLDEN = 0.618033988749895


def segment_ids(data: bytes) -> np.ndarray:
    """The (H, W) segment ids of a panoptic PNG; ValueError when it is not an RGB PNG."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "PNG" or image.mode not in ("RGB", "RGBA"):
                raise ValueError(f"expected an RGB PNG, got {image.format} {image.mode}")
            rgb = np.asarray(image.convert("RGB"), dtype=np.int64)
    except ValueError:
        raise
    # Pillow raises many types for broken files (OSError, SyntaxError, ...).
    except Exception as error:
        raise ValueError(f"cannot be read as a PNG ({error})") from None
    return rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]


def segment_colour(segment_id: int) -> tuple[int, int, int]:
    """A colour per segment id, spread round the hue circle so neighbours differ."""
    red, green, blue = colorsys.hsv_to_rgb((segment_id * _GOLDEN) % 1.0, 0.75, 0.95)
    return round(red * 255), round(green * 255), round(blue * 255)


def overlay_png(ids: np.ndarray) -> bytes:
    """The translucent overlay with outlines, as PNG bytes (unlabelled pixels transparent)."""
    unique, inverse = np.unique(ids, return_inverse=True)
    inverse = inverse.reshape(ids.shape)
    fill = np.zeros((len(unique), 4), dtype=np.uint8)
    for index, segment_id in enumerate(unique.tolist()):
        if segment_id != 0:
            fill[index] = (*segment_colour(segment_id), FILL_ALPHA)
    rgba = fill[inverse]
    # An outline pixel differs from its right or lower neighbour (both sides get a line).
    edge = np.zeros(ids.shape, dtype=bool)
    horizontal = ids[:, 1:] != ids[:, :-1]
    vertical = ids[1:, :] != ids[:-1, :]
    edge[:, 1:] |= horizontal
    edge[:, :-1] |= horizontal
    edge[1:, :] |= vertical
    edge[:-1, :] |= vertical
    edge &= ids != 0
    rgba[edge, 3] = OUTLINE_ALPHA
    buffer = io.BytesIO()
    Image.fromarray(rgba).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()
