"""What the demo (`manage.py demo_setup`) takes from the trainer: Synthetic Shapes scenes to
rate, and a trainer checkpoint's detections on them."""

from pathlib import Path

import numpy as np
import torch

from trainer.data.detection import DetectionExample, collate
from trainer.data.shapes import CLASS_NAMES, Scene, ShapesConfig, generate_scene, scene_seed
from trainer.tasks.detection import predict
from trainer.train.checkpoint import load_checkpoint

__all__ = ["CLASS_NAMES", "api_objects", "checkpoint_outputs", "val_scene"]


def val_scene(index: int, image_size: int) -> tuple[int, Scene]:
    """Scene `index` of Synthetic Shapes' val split at `image_size` pixels, and its seed."""
    seed = scene_seed("val", index)
    return seed, generate_scene(seed, ShapesConfig(image_size=image_size))


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
