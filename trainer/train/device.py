"""Where the trainer's tensors live: the one rule, shared by training and evaluation."""

from __future__ import annotations

import torch


def pick_device() -> torch.device:
    """CUDA when there is a GPU, else the CPU: sizes scale up by config alone."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
