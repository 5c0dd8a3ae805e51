"""What the ablation grid saves by computing VSPCN's frozen trunk once per image (`zsl_lib.memo`).

On the book-size world 0, on one thread: the time of a VSPCN training step (batch 64) and of
scoring a batch of 128 images, with the plain model and with the memoised one whose store
already holds the batch's trunk outputs (as in every epoch after the first, and in the whole
final run of a grid cell). Timings alternate between the two models (`common.median_seconds`),
so the machine's noise hits both alike; the result records the ratios.

    python benchmarks/memo_trunk.py          # writes benchmarks/results/memo_trunk.json
"""
import time

import torch

from common import median_seconds, save_result
from zsl_lib.backbones import batch_to_input
from zsl_lib.toyworld.dataset import ToyBirdsConfig, load_toybirds
from zsl_lib.vspcn import preset
from zsl_lib.vspcn.experiment import build, build_memoised

REPEATS = 7


def main() -> None:
    torch.set_num_threads(1)
    start = time.time()
    world = load_toybirds(ToyBirdsConfig.for_mode("book", seed=0))
    train_x = batch_to_input(world.images[world.splits["trainval"][:64]])
    labels = torch.arange(64) % len(world.seen_classes)
    eval_x = batch_to_input(world.images[world.splits["test_unseen"][:128]])
    models = {name: make(world, preset("paper_default"), world.seen_classes, 0)
              for name, make in (("plain", build), ("memoised", build_memoised))}
    with torch.no_grad():
        models["memoised"](train_x)
        models["memoised"](eval_x)                                   # the store holds both batches
    optimizers = {name: torch.optim.Adam([p for p in m.parameters() if p.requires_grad], 1e-3)
                  for name, m in models.items()}

    def train_step(name):
        def step():
            models[name].train()
            loss = models[name].training_losses(train_x, labels)["total"]
            optimizers[name].zero_grad()
            loss.backward()
            optimizers[name].step()
        return step

    def score(name):
        def step():
            models[name].eval()
            with torch.no_grad():
                models[name](eval_x)
        return step

    steps = median_seconds({f"{kind}_{name}": (train_step if kind == "train" else score)(name)
                            for kind in ("train", "score") for name in models}, REPEATS)
    metrics = {"seconds": {k: round(v, 4) for k, v in steps.items()},
               "train_step_ratio": round(steps["train_memoised"] / steps["train_plain"], 3),
               "score_ratio": round(steps["score_memoised"] / steps["score_plain"], 3)}
    config = {"world": "book, seed 0", "preset": "paper_default", "train_batch": 64, "score_batch": 128,
              "threads": 1, "repeats": REPEATS}
    print(metrics)
    print("wrote", save_result("memo_trunk", config, metrics, time.time() - start))


if __name__ == "__main__":
    main()
