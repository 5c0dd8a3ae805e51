"""Several processes, one run: the little the training loop needs from torch.distributed.

Under `torchrun` every process reads RANK, WORLD_SIZE and LOCAL_RANK from its
environment; `setup()` joins the process group (NCCL on CUDA, gloo on the CPU). Without
torchrun it returns a single-process view and nothing changes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Processes:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0 logs, evaluates and writes checkpoints."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """The mean over all processes of `values` (each rank's loss terms on its share), computed
        on the device, so that averaging adds no host-device synchronisation of its own. The
        tensor is on the training device: CUDA for NCCL, the CPU for gloo."""
        if self.world == 1:
            return values
        dist.all_reduce(values)
        return values / self.world


def setup(device_type: str) -> Processes:
    """Join the process group torchrun set up in the environment (a no-op without torchrun)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Processes()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return Processes(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
