"""VSPCN's training step against a frozen-ViT step on the same backbone and batch, and peak memory.

The frozen-ViT step is Table 2's row 1 (the baseline: CLS token, positions and the
attribute projection train, the blocks stay frozen); VSPCN is row 8 of `paper_default`.
A step is forward, backward and an Adam update. Both are timed in one process, alternating
step by step, so that the machine's noise hits both alike; the ratio of medians is reported.
Each step's floating-point operations are counted too (torch's FlopCounterMode).

Goal: an overhead of at most 1.10, the overhead being the time ratio divided by the FLOP
ratio. VSPCN's fusion modules add FLOPs that belong to the architecture (the strong steps
project every patch and attribute token in each deep block, and those weights need
gradients); no implementation removes them, so only the time beyond them is judged.

Peak memory is measured in a fresh process per model: the peak resident set during three
steps on the CPU (Linux), `torch.cuda.max_memory_allocated` on CUDA, and how much the steps
added.

    python benchmarks/train_step.py                     # the toy ViT (64 px) and ViT-B/16 (224 px)
    python benchmarks/train_step.py --backbones toy --steps 20

Writes benchmarks/results/train_step.json, one entry per backbone: a run of some backbones
replaces their entries and keeps the others (`common.save_entries`).
"""
import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import timm
import torch

from common import judged, median_seconds, save_entries, step_flops
from zsl_lib import provenance
from zsl_lib.backbones import batch_to_input
from zsl_lib.runtime import resolve_device
from zsl_lib.toyworld.dataset import ToyBirdsConfig, load_toybirds
from zsl_lib.vspcn import VSPCN, table2_row
from zsl_lib.vspcn.experiment import build

GOAL = {"text": "VSPCN's step time over the frozen ViT's, divided by their FLOP ratio: the time "
                "beyond the fusion modules' own FLOPs", "measure": "overhead", "at_most": 1.10}
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
    time_ratio, flops_ratio = median["vspcn"] / median["frozen_vit"], flops["vspcn"] / flops["frozen_vit"]
    return {"batch": batch_size(backbone, device), "steps": steps,
            "median_step_s": {k: round(v, 4) for k, v in median.items()},
            "ratio": round(time_ratio, 3),
            "gflops_per_step": {k: round(v / 1e9, 1) for k, v in flops.items()},
            "flops_ratio": round(flops_ratio, 3)} | verdict(time_ratio, flops_ratio)


def verdict(time_ratio: float, flops_ratio: float) -> dict:
    """The overhead of VSPCN's step over the frozen ViT's, time ratio / FLOP ratio, judged against `GOAL`."""
    overhead = time_ratio / flops_ratio
    return {"overhead": round(overhead, 3)} | judged(GOAL, overhead)


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
    sha, entries, seconds = provenance.git_sha(), {}, {}
    for backbone in args.backbones:
        start = time.time()
        entries[backbone] = time_pair(backbone, args.steps, device)
        entries[backbone]["peak_memory_mb"] = {}
        for name in ROWS:
            out = subprocess.run([sys.executable, __file__, "--device", args.device, "--memory-of", backbone, name],
                                 capture_output=True, text=True, check=True)
            entries[backbone]["peak_memory_mb"][name] = json.loads(out.stdout)
        seconds[backbone] = time.time() - start
        print(backbone, entries[backbone])
    print("wrote", save_entries("train_step", vars(args), entries, seconds, sha))


if __name__ == "__main__":
    main()
