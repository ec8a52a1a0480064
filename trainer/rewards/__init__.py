"""Task rewards for REINFORCE tuning: plain functions (predictions, targets) -> reward per sample.

Each is vectorised over images x samples and checked against a straightforward reference.
"""

from trainer.rewards.detection import (
    DetectionRewardOutput,
    box_iou,
    class_frequency_weights,
    detection_reward,
)

__all__ = ["DetectionRewardOutput", "box_iou", "class_frequency_weights", "detection_reward"]
