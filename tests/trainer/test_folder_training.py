"""A data folder trains like detection data does: its held-out share is never drawn for training
(a seeded val_fraction, or the images its heldout.json names), and the images it trains on are
flipped and scale-jittered with their boxes moved along."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.trainer.conftest import TINY_COCO_CATEGORIES
from trainer.configs import ConfigError, DataConfig
from trainer.data.augment import flip_horizontal, scale_jitter
from trainer.data.coco import write_coco_dir
from trainer.data.detection import DetectionExample, denormalize_images
from trainer.data.splits import choose_heldout, heldout_count, write_heldout
from trainer.train.data import TrainStream, folder_shares

WHITE, BLACK = 255, 0


def block_image(height: int, width: int, box: list[float]) -> DetectionExample:
    """A black image with a white block filling `box` ([ymin, xmin, ymax, xmax] pixels)."""
    image = np.zeros((height, width, 3), dtype=np.uint8)
    ymin, xmin, ymax, xmax = (int(v) for v in box)
    image[ymin:ymax, xmin:xmax] = WHITE
    return DetectionExample(image=image, boxes=np.array([box], dtype=np.float32),
                            classes=np.array([0]), image_id=1)


def inside(example: DetectionExample, row: int = 0) -> np.ndarray:
    ymin, xmin, ymax, xmax = (round(v) for v in example.boxes[row])
    return example.image[ymin:ymax, xmin:xmax]


def test_a_flipped_image_takes_its_box_along() -> None:
    flipped = flip_horizontal(block_image(20, 30, [2, 3, 8, 10]))
    assert flipped.boxes.tolist() == [[2, 20, 8, 27]]
    assert (inside(flipped) == WHITE).all()
    assert flipped.image.sum() == block_image(20, 30, [2, 3, 8, 10]).image.sum()


@pytest.mark.parametrize(("scale", "offset", "box"), [
    (2.0, (0.0, 0.0), [8, 12, 40, 60]),  # enlarged, the top-left window kept, the box cut
    (0.5, (1.0, 1.0), [22, 33, 32, 45]),  # shrunk into the bottom-right corner
])
def test_a_scale_jittered_image_takes_its_box_along(scale, offset, box) -> None:
    jittered = scale_jitter(block_image(40, 60, [4, 6, 24, 30]), scale, offset)
    assert jittered.image.shape == (40, 60, 3)
    assert jittered.boxes.tolist() == [box]
    # Resampling blurs the block's edges: white within the box, black well away from it.
    assert inside(jittered).mean() > 200
    ymin, xmin, ymax, xmax = (round(v) for v in box)
    outside = jittered.image.copy()
    outside[max(0, ymin - 1):ymax + 1, max(0, xmin - 1):xmax + 1] = BLACK
    assert outside.max() < 200


def test_a_box_cut_off_by_the_crop_is_dropped() -> None:
    jittered = scale_jitter(block_image(20, 30, [14, 24, 20, 30]), 2.0, (0.0, 0.0))
    assert jittered.boxes.shape == (0, 4) and jittered.classes.shape == (0,)


@pytest.fixture
def block_folder(tmp_path: Path) -> Path:
    """Four 24 x 32 images, each a white block on black, one category."""
    boxes = [[2, 3, 10, 12], [12, 18, 22, 30], [0, 0, 8, 8], [5, 20, 15, 28]]
    examples = [DetectionExample(image=block_image(24, 32, box).image,
                                 boxes=np.array([box], dtype=np.float32),
                                 classes=np.array([0]), image_id=100 + i,
                                 file_name=f"b{i}.png") for i, box in enumerate(boxes)]
    write_coco_dir(tmp_path / "blocks", examples, [TINY_COCO_CATEGORIES[0]])
    return tmp_path / "blocks"


def test_the_boxes_of_augmented_training_batches_frame_their_blocks(block_folder) -> None:
    data = DataConfig(data_dir=str(block_folder), val_fraction=0.0)
    batch = TrainStream(data, seed=3).next_batch(24, 32)
    images = denormalize_images(batch.images).permute(0, 2, 3, 1).float().numpy()
    moved = 0
    for row in range(len(batch)):
        for slot in np.flatnonzero(batch.valid[row].numpy()):
            ymin, xmin, ymax, xmax = (batch.boxes[row, slot].numpy() * 32).round().astype(int)
            block = images[row, ymin:ymax, xmin:xmax]
            assert block.mean() > 200, (row, batch.boxes[row, slot])
            # The image outside the box holds no white block.
            outside = images[row].copy()
            outside[ymin:ymax, xmin:xmax] = 0
            assert (outside.max(axis=-1) < 200).mean() > 0.97
        moved += not any(np.allclose(batch.boxes[row, 0].numpy() * [24, 32, 24, 32], box)
                         for box in ([2, 3, 10, 12], [12, 18, 22, 30], [0, 0, 8, 8],
                                     [5, 20, 15, 28]))
    assert moved > 12  # nearly every draw is flipped or jittered
    plain = TrainStream(DataConfig(data_dir=str(block_folder), val_fraction=0.0,
                                   augment=False), seed=3).next_batch(8, 32)
    originals = json.loads((block_folder / "instances.json").read_text())["annotations"]
    assert len({tuple(box) for box in plain.boxes[:, 0].tolist()}) == len(originals)


def test_a_resumed_stream_draws_the_same_augmented_images(block_folder) -> None:
    data = DataConfig(data_dir=str(block_folder), val_fraction=0.0)
    whole = TrainStream(data, seed=5)
    whole.next_batch(3, 32)
    resumed = TrainStream(data, seed=5, start=3)
    assert (whole.next_batch(4, 32).images == resumed.next_batch(4, 32).images).all()


def test_held_out_images_are_never_trained_on(block_folder) -> None:
    data = DataConfig(data_dir=str(block_folder), val_fraction=0.25, split_seed=7)
    shares = folder_shares(data)
    heldout = {example.image_id for example in shares.heldout}
    assert len(heldout) == 1 and shares.ground_truth
    assert heldout == {e.image_id for e in folder_shares(data).heldout}  # seeded: the same
    drawn = set(TrainStream(data).next_batch(30, 32).image_ids.tolist())
    assert drawn == {100, 101, 102, 103} - heldout


def test_a_folder_names_its_held_out_images(block_folder) -> None:
    write_heldout(block_folder, [101, 103], ground_truth=False)
    shares = folder_shares(DataConfig(data_dir=str(block_folder)))
    assert [e.image_id for e in shares.heldout] == [101, 103] and not shares.ground_truth
    assert set(TrainStream(DataConfig(data_dir=str(block_folder))).next_batch(
        12, 32).image_ids.tolist()) == {100, 102}
    write_heldout(block_folder, [100, 101, 102, 103], ground_truth=True)
    with pytest.raises(ValueError, match="none is left to train on"):
        folder_shares(DataConfig(data_dir=str(block_folder)))
    (block_folder / "heldout.json").write_text(json.dumps({"image_ids": [5]}))
    with pytest.raises(ValueError, match=r"heldout\.json"):
        folder_shares(DataConfig(data_dir=str(block_folder)))


def test_the_held_out_share_leaves_something_to_train_on() -> None:
    assert [heldout_count(n, n, 0.1) for n in (0, 1, 2, 10, 26)] == [0, 0, 1, 1, 3]
    assert heldout_count(3, 9, 0.0) == 0 and heldout_count(1, 9, 0.5) == 1
    assert choose_heldout([5, 1, 9, 3], 2, seed=0) == choose_heldout([9, 3, 5, 1], 2, seed=0)


def test_the_jitter_range_is_checked() -> None:
    with pytest.raises(ConfigError) as error:
        DataConfig(scale_min=1.5)
    assert error.value.field == "scale_min"
    with pytest.raises(ConfigError):
        DataConfig(val_fraction=1.0)
