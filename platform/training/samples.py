"""Sample outputs before and after a run, side by side on the run page.

The first few held-out images are decoded greedily by the starting model and by the tuned one;
the images are saved under the run's media folder and the detections are kept in the API's
candidate format (`{"objects": [{"bbox": [x, y, w, h], "category_id", "score"}]}`, pixels of
the image, COCO category ids), so the page draws them like the annotator UI does.
"""

import io
from collections.abc import Sequence
from typing import Any

import torch
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from trainer.data.coco import detections_to_coco_results
from trainer.data.detection import DetectionExample, DetectionSource, collate
from trainer.models.pix2seq import Pix2SeqModel
from trainer.tasks.detection import DetectionTask, predict

SAMPLE_IMAGES = 4


def detection_outputs(
    model: Pix2SeqModel, task: DetectionTask, examples: Sequence[DetectionExample],
    category_ids: Sequence[int], *, temperature: float = 0.0, seed: int = 0,
) -> list[dict[str, Any]]:
    """The model's output for each example in the API's candidate format: greedy decoding by
    default, a sample at `temperature` > 0 (seeded, so a sample can be drawn again)."""
    model.eval()
    generator = torch.Generator(device=model.device).manual_seed(seed)
    with torch.no_grad():
        images = collate(examples, model.config.image_size).images.to(model.device)
        detections = predict(model, task.codec, images, temperature=temperature,
                             generator=generator)
    results = detections_to_coco_results(
        [e.image_id for e in examples], [d.boxes for d in detections],
        [d.class_prob for d in detections], [d.classes for d in detections],
        [e.image.shape[:2] for e in examples], category_ids,
    )
    by_image: dict[int, list[dict]] = {e.image_id: [] for e in examples}
    for result in results:
        by_image[result["image_id"]].append({
            "bbox": [round(v, 1) for v in result["bbox"]],
            "category_id": result["category_id"], "score": round(result["score"], 3),
        })
    return [{"objects": by_image[e.image_id]} for e in examples]


def before_after_samples(
    *, run_id: int, source: DetectionSource, before: tuple[Pix2SeqModel, DetectionTask],
    after: tuple[Pix2SeqModel, DetectionTask], count: int = SAMPLE_IMAGES,
) -> list[dict[str, Any]]:
    """`[{"image_url", "width", "height", "before": output, "after": output}]`."""
    samples = []
    examples = source.examples[:count]
    first = detection_outputs(*before, examples, source.category_ids)
    second = detection_outputs(*after, examples, source.category_ids)
    for index, example in enumerate(examples):
        buffer = io.BytesIO()
        Image.fromarray(example.image).save(buffer, format="PNG")
        name = f"tuning/runs/{run_id}/samples/{index}.png"
        if default_storage.exists(name):  # a resumed run writes the same images again
            default_storage.delete(name)
        default_storage.save(name, ContentFile(buffer.getvalue()))
        height, width = example.image.shape[:2]
        samples.append({"image_url": default_storage.url(name), "width": width,
                        "height": height, "before": first[index], "after": second[index]})
    return samples
