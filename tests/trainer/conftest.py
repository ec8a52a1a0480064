"""Tiny fixtures shared by the trainer tests (small images, few scenes, so tests stay fast)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from trainer.configs import DataConfig, DetectionTaskConfig, ModelConfig, PretrainConfig
from trainer.data.coco import write_coco_dir
from trainer.data.detection import DetectionExample
from trainer.data.shapes import ShapesConfig
from trainer.train.loops import pretrain

# Non-contiguous ids in a shuffled order, as users' files have them.
TINY_COCO_CATEGORIES = [
    {"id": 7, "name": "cat"}, {"id": 3, "name": "dog"}, {"id": 11, "name": "cup"},
]


@pytest.fixture
def one_thread():
    """Torch on one thread for the test (tiny models: more threads only add overhead)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def tiny_shapes_config() -> ShapesConfig:
    """32 px scenes with up to 4 objects: enough structure to test, cheap to generate."""
    return ShapesConfig(image_size=32, max_objects=4, min_object_size=0.2, max_object_size=0.5)


@pytest.fixture
def tiny_coco_examples() -> list[DetectionExample]:
    """Three small non-square images with boxes (classes index TINY_COCO_CATEGORIES sorted by id:
    0 = dog (3), 1 = cat (7), 2 = cup (11)); the last image has no objects."""
    rng = np.random.default_rng(0)
    shapes = [(40, 60), (50, 30), (24, 24)]
    boxes = [
        [[2.0, 3.0, 20.0, 30.0], [10.0, 40.0, 38.0, 59.0]],
        [[5.0, 5.0, 45.0, 25.0]],
        [],
    ]
    classes = [[0, 2], [1], []]
    return [
        DetectionExample(
            image=rng.integers(0, 256, size=(*shape, 3), dtype=np.uint8),
            boxes=np.array(box, dtype=np.float32).reshape(-1, 4),
            classes=np.array(cls, dtype=np.int64),
            image_id=10 + i,
            file_name=f"images/img{i}.png",
        )
        for i, (shape, box, cls) in enumerate(zip(shapes, boxes, classes, strict=True))
    ]


@pytest.fixture
def tiny_coco_dir(tmp_path: Path, tiny_coco_examples: list[DetectionExample]) -> Path:
    """A COCO folder (`instances.json` + PNGs under images/) of `tiny_coco_examples()`, plus one
    crowd annotation on the first image, which training must ignore and evaluation keep."""
    root = tmp_path / "tiny_coco"
    categories = sorted(TINY_COCO_CATEGORIES, key=lambda c: c["id"])
    file = write_coco_dir(root, tiny_coco_examples, categories)
    gt = json.loads(file.read_text())
    gt["categories"] = TINY_COCO_CATEGORIES
    gt["annotations"].append(
        {"id": 99, "image_id": 10, "category_id": 7, "bbox": [30.0, 0.0, 10.0, 8.0],
         "area": 80.0, "iscrowd": 1}
    )
    file.write_text(json.dumps(gt))
    return root


@pytest.fixture(scope="session")
def tiny_detection_mle(tmp_path_factory) -> Path:
    """A tiny detection checkpoint after two MLE steps: 32 px Synthetic Shapes (up to 3 objects),
    one encoder and one decoder block of width 32, 16 coordinate bins, up to 3 boxes."""
    path = tmp_path_factory.mktemp("tiny_detection") / "mle.pt"
    pretrain(ModelConfig(image_size=32, d_model=32, heads=2, encoder_layers=1, decoder_layers=1),
             DetectionTaskConfig(coord_bins=16, max_boxes=3),
             DataConfig(max_objects=3, eval_images=2),
             PretrainConfig(steps=2, batch_size=4, warmup=1), checkpoint_path=path,
             progress=False)
    return path
