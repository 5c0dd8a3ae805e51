"""How fast ToyBirds renders: 10,000 images at 64 px on one CPU core (target: at most 30 s).

Writes benchmarks/results/render_speed.json. Pinned to one core; the images are
rendered exactly as `load_toybirds` does (part maps and attribute sampling included),
without the disk write.

    python benchmarks/render_speed.py [--images 10000] [--size 64]
"""
import argparse
import os
import time

from common import save_result
from zsl_lib.toyworld.dataset import ToyBirdsConfig, render_world

TARGET_SECONDS_PER_10K = 30.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    per_class = max(1, args.images // 100)
    config = ToyBirdsConfig(images_per_class=per_class, image_size=args.size)
    render_world(ToyBirdsConfig(images_per_class=5, image_size=args.size))   # warm-up
    start = time.perf_counter()
    render_world(config)
    seconds = time.perf_counter() - start
    n = per_class * 100
    metrics = {"images": n, "size": args.size, "seconds": round(seconds, 2),
               "ms_per_image": round(1000 * seconds / n, 3),
               "seconds_per_10k": round(seconds * 10_000 / n, 1),
               "target_seconds_per_10k": TARGET_SECONDS_PER_10K,
               "meets_target": seconds * 10_000 / n <= TARGET_SECONDS_PER_10K}
    save_result("render_speed", vars(args) | {"cores": 1}, metrics, seconds)
    print(metrics)


if __name__ == "__main__":
    main()
