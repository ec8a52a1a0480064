"""What the demo (`manage.py demo_setup`) takes from the trainer: Synthetic Shapes scenes, and
for each task the item's image, its ground truth and simulated outputs at graded quality levels
(`training.demo_outputs`) in the API's candidate formats (docs/api.md), and a trainer
checkpoint's detections on the scenes.

Outputs that are images (colorization, panoptic) are PNGs handed to a `Store`, which the caller
binds to a file's folder and name, and which returns the URL the output points at.
"""

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ingest.panoptic import overlay_png
from trainer.data.detection import DetectionExample, collate
from trainer.data.shapes import CLASS_NAMES, Scene, ShapesConfig, generate_scene, scene_seed
from trainer.tasks.detection import predict
from trainer.train.checkpoint import load_checkpoint
from training.demo_outputs import (
    CAPTION_LEVELS,
    COLOUR_LEVELS,
    DETECTION_LEVELS,
    SEGMENT_LEVELS,
    caption,
    colorized,
    detection_rows,
    panoptic_truth,
    segments,
)

__all__ = ["CLASS_NAMES", "LEVELS", "Store", "api_objects", "candidate_output",
           "checkpoint_outputs", "ground_truth", "item_png", "val_scene"]

# (suffix of the file's name, PNG bytes) -> the stored file's URL.
Store = Callable[[str, bytes], str]

# Each task's simulated models, best first (each has `name` and `describe()`).
LEVELS: dict[str, tuple] = {
    "detection": DETECTION_LEVELS,
    "captioning": CAPTION_LEVELS,
    "colorization": COLOUR_LEVELS,
    "panoptic": SEGMENT_LEVELS,
}


def val_scene(index: int, image_size: int) -> tuple[int, Scene]:
    """Scene `index` of Synthetic Shapes' val split at `image_size` pixels, and its seed."""
    seed = scene_seed("val", index)
    return seed, generate_scene(seed, ShapesConfig(image_size=image_size))


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    # The least compression: the demo writes a few hundred images while its user waits.
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def item_png(task: str, scene: Scene) -> bytes:
    """The image an item of `task` shows: the greyscale input for colorization (the outputs
    are its colours), the colour scene otherwise."""
    return png(scene.gray if task == "colorization" else scene.image)


def api_objects(objects: list[tuple], width: float, height: float) -> dict:
    """(x0, y0, x1, y1, class index, score) rows as the API's detection output: corners put in
    order and clipped to the image, boxes under a pixel dropped, best score first."""
    detections = []
    for x0, y0, x1, y1, cls, score in objects:
        x0, x1 = sorted(float(np.clip(v, 0, width)) for v in (x0, x1))
        y0, y1 = sorted(float(np.clip(v, 0, height)) for v in (y0, y1))
        if x1 - x0 < 1 or y1 - y0 < 1:
            continue
        detections.append({
            "bbox": [round(x0, 1), round(y0, 1), round(x1 - x0, 1), round(y1 - y0, 1)],
            "category_id": int(cls) + 1,
            "score": round(float(score), 3),
        })
    return {"objects": sorted(detections, key=lambda d: -d["score"])}


def panoptic_png(ids: np.ndarray) -> bytes:
    """Segment ids as a COCO panoptic PNG (id = R + 256 G + 65536 B; read back by
    `ingest.panoptic.segment_ids`)."""
    rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536 % 256], axis=-1)
    return png(rgb.astype(np.uint8))


def _panoptic_output(ids: np.ndarray, listed: list[dict], store: Store) -> dict:
    return {"png_url": store(".png", panoptic_png(ids)),
            "overlay_url": store("_overlay.png", overlay_png(ids)), "segments": listed}


def ground_truth(task: str, scene: Scene, store: Store) -> dict | None:
    """The item's ground truth in the import's form (`ingest.services`); for colorization the
    colour image the item (the greyscale input) leaves out, `{"image_url"}`."""
    if task == "detection":
        return {"objects": [
            {"bbox": [round(x0, 1), round(y0, 1), round(x1 - x0, 1), round(y1 - y0, 1)],
             "category_id": int(cls) + 1}
            for (y0, x0, y1, x1), cls in zip(scene.boxes.tolist(), scene.classes.tolist(),
                                             strict=True)
        ]}
    if task == "captioning":
        return {"captions": list(scene.captions)}
    if task == "panoptic":
        return _panoptic_output(*panoptic_truth(scene), store)
    return {"image_url": store(".png", png(scene.image))}


def candidate_output(task: str, scene: Scene, level: int, *, seed: int, store: Store) -> dict:
    """Simulated model `LEVELS[task][level]`'s output for the scene, in the API's form."""
    errors = LEVELS[task][level]
    size = scene.image.shape[0]
    if task == "detection":
        return api_objects(detection_rows(scene, errors, seed=seed), size, size)
    if task == "captioning":
        # Every level words a scene alike, so that a comparison turns on what the words say.
        return {"caption": caption(scene, errors, seed=seed, paraphrase=scene.seed)}
    if task == "colorization":
        return {"image_url": store(".png", png(colorized(scene, errors, seed=seed)))}
    return _panoptic_output(*segments(scene, errors, seed=seed), store)


def checkpoint_outputs(path: Path, scenes: list) -> tuple[str, list[list[dict]]]:
    """A trainer checkpoint's detections on the scenes: (model version name, per scene the
    greedy output then one sampled at temperature 1), in the API's detection form."""
    checkpoint = load_checkpoint(path)
    if tuple(checkpoint.class_names) != tuple(CLASS_NAMES):
        raise ValueError(f"it detects {', '.join(checkpoint.class_names)}, not Synthetic Shapes")
    model, task = checkpoint.build("cpu")
    model.eval()
    examples = [DetectionExample(image=s.image, boxes=s.boxes, classes=s.classes, image_id=s.seed)
                for s in scenes]
    batch = collate(examples, model.config.image_size)
    generator = torch.Generator().manual_seed(0)
    samples = [predict(model, task.codec, batch.images, temperature=t, generator=generator)
               for t in (0.0, 1.0)]
    outputs = []
    for index, scene in enumerate(scenes):
        height, width = scene.image.shape[:2]
        scale = torch.tensor([height, width, height, width], dtype=torch.float32)
        per_scene = []
        for detections in (sample[index] for sample in samples):
            rows = [(x0, y0, x1, y1, cls, score) for (y0, x0, y1, x1), cls, score in zip(
                (detections.boxes * scale).tolist(), detections.classes.tolist(),
                detections.class_prob.tolist(), strict=True)]
            per_scene.append(api_objects(rows, width, height))
        outputs.append(per_scene)
    name = f"checkpoint {path.stem} ({checkpoint.stage}, step {checkpoint.step})"
    return name, outputs
