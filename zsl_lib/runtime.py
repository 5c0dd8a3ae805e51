"""Where things run and where they are kept: device, seeds, the cache folder, atomic writes."""
from __future__ import annotations

import contextlib
import math
import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch


def cache_dir() -> Path:
    """The library's cache folder: `$ZSL_CACHE`, else `~/.cache/zsl_lib`."""
    path = Path(os.environ.get("ZSL_CACHE", Path.home() / ".cache" / "zsl_lib"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def resolve_device(device: str = "auto") -> torch.device:
    """The torch device for a DEVICE parameter: "auto" is CUDA when torch sees a GPU, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"DEVICE={device!r} but torch sees no GPU; use DEVICE='auto' or 'cpu'")
    return torch.device(device)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def warmup(step: int, warmup_steps: int) -> float:
    """Learning-rate factor of a linear warm-up over `warmup_steps` (0: none)."""
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0


def warmup_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    """Learning-rate factor: linear warm-up over `warmup_steps`, cosine decay to 0 at `total_steps`."""
    return warmup(step, warmup_steps) * 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))


@contextlib.contextmanager
def torch_threads(threads: int):
    """Run the block with torch on `threads` CPU threads, then restore the previous number."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w"):
    """Open a temporary file beside `path`; rename it onto `path` only if the block succeeds.

    A reader never sees a half-written file, and an interrupted write leaves the old one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    f = tempfile.NamedTemporaryFile(mode, dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False)
    try:
        with f:
            yield f
        os.chmod(f.name, 0o644)  # temporary files are private; the result is not
        os.replace(f.name, path)
    except BaseException:
        os.unlink(f.name)
        raise
