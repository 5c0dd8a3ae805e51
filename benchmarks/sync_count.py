"""Host-device synchronisations per training step of `zsl_lib.train.train`, for VSPCN and Mg-MRN.

A sync stalls the Python thread until the GPU has finished all queued work, so the GPU then
idles while Python prepares the next kernels. Target: at most one per step (the loop reads the
logged loss terms once, after the update).

How they are counted depends on the machine, and the result file records which:
- with a GPU ("cuda_sync_debug_mode"): torch's CUDA sync debug mode warns at every synchronising
  call, and the warnings are counted;
- on a CPU ("cpu_counted_host_reads"): nothing synchronises, so the Python-side reads of tensor
  values (`.item()`, `.tolist()`, `bool()`, `float()`, `int()`, `zsl_lib.runtime.count_host_reads`)
  are counted instead; each would be a sync on a GPU. The optimisers' reads of their step
  counters, which torch keeps on the host, are reported apart and are not syncs.

Per step = (count over `--steps` + `--base` steps - count over `--base` steps) / `--steps`, so
the set-up's one-off reads (moving the model, the first batch) cancel out. The toy models on
the smoke world, 16 images a step, no epoch end in the window.

    PYTHONPATH=. python benchmarks/sync_count.py [--steps 3] [--base 1] [--device auto]

Writes benchmarks/results/sync_count.json.
"""
import argparse
import time
import warnings

import torch

from common import save_result
from zsl_lib import mgmrn, vspcn
from zsl_lib.mgmrn.experiment import build as build_mgmrn
from zsl_lib.runtime import count_host_reads, resolve_device
from zsl_lib.toyworld.dataset import ToyBirdsConfig, load_toybirds
from zsl_lib.train import TrainConfig, train
from zsl_lib.vspcn.experiment import build as build_vspcn

TARGET = 1
MODELS = {"vspcn_paper_default": lambda w: build_vspcn(w, vspcn.preset("paper_default"), w.seen_classes),
          "mgmrn_paper": lambda w: build_mgmrn(w, mgmrn.preset("paper"), w.seen_classes, 0),
          "mgmrn_official_code": lambda w: build_mgmrn(w, mgmrn.preset("official_code"), w.seen_classes, 0)}


def count(world, name: str, steps: int, device: torch.device) -> dict:
    """Syncs (or counted reads) and optimiser step-counter reads of a run of `steps` steps."""
    model = MODELS[name](world)
    tv = world.splits["trainval"]
    cfg = TrainConfig(steps=steps, batch_size=16, device=device.type, log_every=10_000)
    with count_host_reads() as reads, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if device.type == "cuda":
            torch.cuda.set_sync_debug_mode("warn")
        try:
            train(model, world.images[tv], world.labels[tv], cfg, log=lambda *_: None, normalize=world.normalize)
        finally:
            if device.type == "cuda":
                torch.cuda.set_sync_debug_mode("default")
    syncs = (sum("synchronizing" in str(w.message) for w in caught) if device.type == "cuda"
             else sum(v for k, v in reads.items() if k != "optimizer_step_counters"))
    return {"syncs": syncs, "reads": reads}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--base", type=int, default=1)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    torch.set_num_threads(2)
    start = time.time()
    world = load_toybirds(ToyBirdsConfig.for_mode("smoke"))
    method = "cuda_sync_debug_mode" if device.type == "cuda" else "cpu_counted_host_reads"
    metrics = {"method": method, "target_per_step": TARGET}
    for name in MODELS:
        short = count(world, name, args.base, device)
        long = count(world, name, args.base + args.steps, device)
        per_step = (long["syncs"] - short["syncs"]) / args.steps
        metrics[name] = {"syncs_per_step": per_step, "meets_target": per_step <= TARGET,
                         "reads_per_step": {k: (long["reads"][k] - short["reads"][k]) / args.steps
                                            for k in long["reads"]}}
        print(f"{name}: {per_step:g} sync(s) a step ({method})")
    out = save_result("sync_count", {"steps": args.steps, "base": args.base, "device": str(device),
                                     "batch_size": 16, "world": "ToyBirds smoke"}, metrics, time.time() - start)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
