"""Data-parallel tuning: the pieces `tune()` uses when torchrun runs it in several processes.

`trainer.train.launch` starts the processes (NCCL on GPUs, one GPU each; gloo on CPU). Each
holds the whole model and, every step, takes an equal share of the global batch
(`TrainStream.next_batch(shard=...)`), samples with one generator per image seeded from
(seed, step, image) (`image_generators`: an image's samples do not depend on the sharding) and
averages the gradients after backward (`average_gradients`). The policy loss is a mean over
samples, so the average of equal shards' gradients is the whole batch's: the run takes the steps
one process would take with the same global batch. A mean over items whose number differs
between shards (detection's confidence loss, over valid boxes) divides by the count over all
processes (`shard_mean`). Only rank 0 logs and writes checkpoints; logged metrics are averaged
over the processes (exact for means over images, such as the reward).

In one process (no torchrun) `join` returns rank 0 of 1 and the rest are no-ops.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn


@dataclass(frozen=True)
class World:
    """This process's place among the data-parallel processes."""

    rank: int
    size: int
    device: torch.device

    @property
    def leader(self) -> bool:
        """Rank 0: the process that logs and writes checkpoints."""
        return self.rank == 0

    @property
    def shard(self) -> tuple[int, int]:
        """(k, count): this process takes the k-th of `count` equal parts of each batch."""
        return self.rank, self.size

    def images(self, batch_size: int) -> range:
        """Indices in the global batch of this process's images."""
        share = batch_size // self.size
        return range(self.rank * share, (self.rank + 1) * share)

    def mean(self, metrics: dict[str, float]) -> dict[str, float]:
        """Each metric averaged over the processes."""
        if self.size == 1:
            return metrics
        values = torch.tensor(list(metrics.values()), dtype=torch.float64, device=self.device)
        dist.all_reduce(values)
        return dict(zip(metrics, (values / self.size).tolist(), strict=True))

    def any(self, flag: bool) -> bool:
        """True in every process when it is in one (they stop together, or wait forever)."""
        if self.size == 1:
            return flag
        value = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())


def join(processes: int, device: torch.device) -> World:
    """This process's place; under torchrun (RANK, WORLD_SIZE, LOCAL_RANK in the environment)
    it joins the process group, on GPU `LOCAL_RANK` with NCCL when `device` is CUDA, else with
    gloo. ValueError when `processes` is not the number of processes running."""
    if "WORLD_SIZE" not in os.environ:
        if processes != 1:
            raise ValueError(f"processes={processes}: start them with torchrun "
                             "(trainer.train.launch.tune_in_processes does)")
        return World(0, 1, device)
    size, rank = int(os.environ["WORLD_SIZE"]), int(os.environ["RANK"])
    if size != processes:
        raise ValueError(f"processes={processes}, but torchrun started {size}")
    backend = "gloo"
    if device.type == "cuda":
        local, gpus = int(os.environ["LOCAL_RANK"]), torch.cuda.device_count()
        if local >= gpus:
            raise ValueError(f"processes={processes}: one GPU each, but this machine has {gpus}")
        device, backend = torch.device("cuda", local), "nccl"
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return World(rank, size, device)


def leave(*, synchronise: bool = True) -> None:
    """Leave the process group (if this process joined one). `synchronise`: first wait until
    every process gets here, so that none tears its connections down while another still
    uses them (gloo then aborts the other: "terminate called without an active exception",
    seen once in the test suite). After an error, leave without waiting for the others."""
    if dist.is_initialized():
        if synchronise and dist.get_world_size() > 1:
            dist.barrier()
        dist.destroy_process_group()


def image_generators(seed: int, step: int, images: range, device: torch.device
                     ) -> list[torch.Generator]:
    """A sampling generator for each image (its index in the global batch) of a step, seeded
    from (seed, step, image) alone: the same samples however the batch is split, and after a
    resume."""
    def seed_of(image: int) -> int:
        key = f"{seed}/{step}/{image}".encode()
        return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little")

    return [torch.Generator(device=device).manual_seed(seed_of(i)) for i in images]


def average_gradients(model: nn.Module) -> None:
    """Replace each gradient by its mean over the processes (no-op in one process). A parameter
    without a gradient in some process counts zero there; it keeps none where no process has
    one (as in one process, where the optimiser then skips it)."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return
    params = [p for p in model.parameters() if p.requires_grad]
    has_grad = torch.tensor([p.grad is not None for p in params], dtype=torch.float32,
                            device=params[0].device)
    dist.all_reduce(has_grad)
    used = [p for p, has in zip(params, has_grad.tolist(), strict=True) if has]
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten()
                      for p in used])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    for p, grad in zip(used, flat.split([p.numel() for p in used]), strict=True):
        p.grad = grad.view_as(p)


def shard_mean(total: Tensor, count: Tensor) -> Tensor:
    """`total / count` (count at least 1) for a mean over items whose number differs between the
    shards: each process's part divides by the count over all processes (times their number),
    so the mean of the parts, as `average_gradients` takes it, is the mean over all items."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return total / count.clamp_min(1)
    count = count.detach().clone()
    dist.all_reduce(count)
    return total * dist.get_world_size() / count.clamp_min(1)
