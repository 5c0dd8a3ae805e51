"""Where things run and where they are kept: device, seeds, the cache folder, atomic writes."""
from __future__ import annotations

import contextlib
import math
import os
import random
import sys
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
        raise ValueError(f"device {device!r} was asked for, but torch sees no GPU; use 'auto' or 'cpu'")
    return torch.device(device)


PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for a precision setting on a device (None: plain fp32)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {PRECISIONS}")
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def configure_cuda(device: torch.device, model: torch.nn.Module | None = None,
                   deterministic: bool = False) -> torch.memory_format:
    """Turn on a GPU's fast paths, on CUDA only (elsewhere nothing changes), and return the memory
    format inputs should take.

    TF32 for fp32 matmuls and convolutions, cuDNN's autotuner (unless `deterministic`), and a CNN
    (a model with more than one 2-d convolution; a ViT has one, its patch embedding) moved to
    channels-last memory, the layout tensor cores read without transposes.
    """
    if device.type != "cuda":
        return torch.contiguous_format
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = not deterministic
    if model is not None and sum(isinstance(m, torch.nn.Conv2d) for m in model.modules()) > 1:
        model.to(memory_format=torch.channels_last)
        return torch.channels_last
    return torch.contiguous_format


# The Tensor methods that hand a value to Python: on a GPU, each waits for the device to finish.
HOST_READS = ("item", "tolist", "__bool__", "__float__", "__int__")
# torch's optimisers read their step counters, which torch keeps on the host (not capturable, not
# fused) precisely so that reading them costs no sync: such reads are counted apart.
OPTIMIZER_FILES = f"{os.sep}torch{os.sep}optim{os.sep}"


@contextlib.contextmanager
def count_host_reads():
    """Count the Python-side reads of tensor values (`.item()`, `.tolist()`, `bool()`, `float()`,
    `int()`) made inside the block: {method: count, ..., "optimizer_step_counters": count}.

    Each read of a tensor on a GPU is a host-device synchronisation, so on a CPU these counts
    stand in for the syncs a GPU would make; the optimisers' reads of their host-side step
    counters are reported under "optimizer_step_counters" and are not syncs.
    """
    counts = dict.fromkeys(HOST_READS, 0) | {"optimizer_step_counters": 0}
    originals = {name: getattr(torch.Tensor, name) for name in HOST_READS}

    def counting(name):
        def read(self, *args, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            counts["optimizer_step_counters" if OPTIMIZER_FILES in caller else name] += 1
            return originals[name](self, *args, **kwargs)
        return read

    for name in HOST_READS:
        setattr(torch.Tensor, name, counting(name))
    try:
        yield counts
    finally:
        for name, method in originals.items():
            setattr(torch.Tensor, name, method)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def warmup(step: int, warmup_steps: int) -> float:
    """Learning-rate factor of a linear warm-up over `warmup_steps` (0: none)."""
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0


def warmup_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    """Learning-rate factor: a cosine over all `total_steps`, 0.5 (1 + cos(pi step / total_steps)),
    from 1 at step 0 to 0 at `total_steps` (and 0 after), multiplied by the linear warm-up ramp
    `warmup(step, warmup_steps)`. The cosine starts at step 0, not after the warm-up: once the ramp
    reaches 1, the factor follows the cosine from where it stands."""
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
