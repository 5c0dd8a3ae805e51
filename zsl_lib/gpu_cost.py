"""What a run would cost on a GPU, estimated from counted work (an estimate, not a measurement).

The work is what `benchmarks/step_flops.py` counts at full size on CUB: the floating-point
operations of one training step (a part per image and a part that does not grow with the batch)
and of scoring one image. Matrix products and convolutions only, so the count is a lower bound
on the work. Time is that work divided by a named GPU's throughput: an NVIDIA A100 SXM, 312
TFLOP/s of dense bf16 tensor-core arithmetic (its data sheet), of which a well-fed training loop
is assumed to sustain `UTILISATION`.
"""
from __future__ import annotations

PEAK_BF16 = 312e12      # NVIDIA A100 SXM, dense bf16 tensor cores, FLOP/s
UTILISATION = 0.3       # the share of the peak a training loop is assumed to sustain


def step_flop(counted: dict, batch: int) -> float:
    """FLOPs of one training step on `batch` images, from a model's entry of step_flops.json."""
    return 1e9 * (counted["train_gflop_fixed"] + batch * counted["train_gflop_per_image"])


def score_flop(counted: dict, images: int) -> float:
    """FLOPs of scoring `images` images."""
    return 1e9 * counted["score_gflop_per_image"] * images


def gpu_seconds(flop: float, utilisation: float = UTILISATION) -> float:
    """Seconds of the A100 for `flop` operations at `utilisation` of its bf16 peak."""
    return flop / (utilisation * PEAK_BF16)
