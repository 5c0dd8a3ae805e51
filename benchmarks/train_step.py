"""VSPCN's training step against a frozen-ViT step on the same backbone and batch, and peak memory.

The frozen-ViT step is Table 2's row 1 (the baseline: CLS token, positions and the
attribute projection train, the blocks stay frozen); VSPCN is row 8 of `paper_default`.
A step is forward, backward and an Adam update. Target: VSPCN's step at most 1.10x the
baseline's. Both are timed in one process, alternating step by step, so that the
machine's noise hits both alike; the ratio of medians is reported. Peak memory is
measured in a fresh process per model: the peak resident set during three steps on the
CPU (Linux), `torch.cuda.max_memory_allocated` on CUDA, and how much the steps added.

    python benchmarks/train_step.py                     # the toy ViT (64 px) and ViT-B/16 (224 px)
    python benchmarks/train_step.py --backbones toy --steps 20

Also counts each step's floating-point operations (torch's FlopCounterMode): the time
ratio follows the FLOP ratio, which is set by the architecture (the strong steps project
every patch and attribute token in each deep block), not by the implementation.

Writes benchmarks/results/train_step.json.
"""
import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import timm
import torch

from common import median_seconds, save_result, step_flops
from zsl_lib.backbones import batch_to_input
from zsl_lib.runtime import resolve_device
from zsl_lib.toyworld.dataset import ToyBirdsConfig, load_toybirds
from zsl_lib.vspcn import VSPCN, table2_row
from zsl_lib.vspcn.experiment import build

TARGET_RATIO = 1.10
ROWS = {"frozen_vit": 1, "vspcn": 8}


def batch_size(backbone: str, device: torch.device) -> int:
    return 64 if backbone == "toy" or device.type == "cuda" else 8


def make(backbone: str, model_name: str, device: torch.device):
    """(model, x, labels) for one benchmark cell, on `device`."""
    torch.manual_seed(0)
    b = batch_size(backbone, device)
    cfg = table2_row(ROWS[model_name])
    if backbone == "toy":
        world = load_toybirds(ToyBirdsConfig.for_mode("smoke"))
        model = build(world, cfg, world.seen_classes)
        x = batch_to_input(world.images[:b])
    else:   # ViT-B/16 with CUB's sizes; weights do not change the speed
        vit = timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=0)
        model = VSPCN(vit, torch.randn(312, 300), torch.rand(200, 312), torch.arange(150), cfg)
        x = torch.randn(b, 3, 224, 224)
    labels = torch.arange(b) % len(model.seen_classes)
    return model.to(device).train(), x.to(device), labels.to(device)


def step_function(model, x, labels, device):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-4)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = model.training_losses(x, labels)["total"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
    return step


def time_pair(backbone: str, steps: int, device: torch.device) -> dict:
    steppers = {name: step_function(*make(backbone, name, device), device) for name in ROWS}
    flops = {name: step_flops(step) for name, step in steppers.items()}
    median = median_seconds(steppers, steps, warmup=2)
    return {"batch": batch_size(backbone, device), "steps": steps,
            "median_step_s": {k: round(v, 4) for k, v in median.items()},
            "ratio": round(median["vspcn"] / median["frozen_vit"], 3),
            "gflops_per_step": {k: round(v / 1e9, 1) for k, v in flops.items()},
            "flops_ratio": round(flops["vspcn"] / flops["frozen_vit"], 3)}


def status_mb(field: str) -> float:
    """A memory field of /proc/self/status (Linux), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}: the CPU memory measurement needs Linux")


def peak_memory_mb(backbone: str, model_name: str, device: torch.device) -> dict:
    """Run in a fresh process: memory at the peak of three training steps, and what the
    steps added to the built model and batch (activations, gradients, Adam's moments)."""
    step = step_function(*make(backbone, model_name, device), device)
    if device.type == "cuda":
        before = torch.cuda.memory_allocated() / 2**20
        torch.cuda.reset_peak_memory_stats()
    else:
        Path("/proc/self/clear_refs").write_text("5")           # resets the peak resident set (VmHWM)
        before = status_mb("VmRSS")
    for _ in range(3):
        step()
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else status_mb("VmHWM")
    return {"peak": round(peak, 1), "added_by_steps": round(peak - before, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backbones", nargs="+", default=["toy", "vit_b16"], choices=["toy", "vit_b16"])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--memory-of", nargs=2, metavar=("BACKBONE", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    device = resolve_device(args.device)
    if args.memory_of:
        print(json.dumps(peak_memory_mb(*args.memory_of, device)))
        return
    start, results = time.time(), {}
    for backbone in args.backbones:
        results[backbone] = time_pair(backbone, args.steps, device)
        results[backbone]["peak_memory_mb"] = {}
        for name in ROWS:
            out = subprocess.run([sys.executable, __file__, "--device", args.device, "--memory-of", backbone, name],
                                 capture_output=True, text=True, check=True)
            results[backbone]["peak_memory_mb"][name] = json.loads(out.stdout)
        results[backbone]["meets_target"] = results[backbone]["ratio"] <= TARGET_RATIO
        print(backbone, results[backbone])
    results["target_ratio"] = TARGET_RATIO
    save_result("train_step", vars(args), results, time.time() - start)


if __name__ == "__main__":
    main()
