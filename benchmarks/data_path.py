"""Images per second from JPEG files against the memory-mapped uint8 cache (target: at least 5x).

The JPEGs stand in for a benchmark's photographs: ToyBirds images enlarged to 500 x 375
(CUB's typical size) and saved at quality 90. Both paths deliver the same thing, a batch
of 224 px uint8 images in a random order, through the training loop's `BatchReader`
(without and with reader threads); they are measured in one process, alternating
epoch by epoch. The cache is read warm (after its build, as in every epoch after the
first). Also records how long building the cache took.

    python benchmarks/data_path.py [--images 512] [--batch 32] [--rounds 3]

Writes benchmarks/results/data_path.json.
"""
import argparse
import statistics
import tempfile
import time
from pathlib import Path

from PIL import Image

from common import save_result
from zsl_lib.imagecache import JpegImages, build_cache
from zsl_lib.toyworld.dataset import ToyBirdsConfig, load_toybirds
from zsl_lib.train import BatchReader, EpochSampler

TARGET_RATIO = 5.0
SIZE = 224


def images_per_second(images, batch: int, workers: int) -> float:
    """One epoch of random batches through the loop's reader."""
    sampler = EpochSampler(len(images), batch, seed=0)
    reader = BatchReader(images, sampler, workers)
    steps = len(images) // batch
    start = time.perf_counter()
    for _ in range(steps):
        reader.next()
    seconds = time.perf_counter() - start
    reader.close()
    return steps * batch / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    start = time.time()
    world = load_toybirds(ToyBirdsConfig.for_mode("smoke"))
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i in range(args.images):
            path = Path(tmp) / f"{i // 100:03d}" / f"{i:05d}.jpg"
            path.parent.mkdir(exist_ok=True)
            Image.fromarray(world.images[i % len(world.images)]).resize((500, 375), Image.BICUBIC).save(path, quality=90)
            paths.append(path)
        t0 = time.perf_counter()
        cache = build_cache(paths, SIZE, Path(tmp) / "cache.npy", log=None)
        build_seconds = time.perf_counter() - t0
        sources = {"jpeg": JpegImages(paths, SIZE), "cache": cache}
        speeds = {f"{name}_workers{w}": [] for name in sources for w in (0, 2)}
        for _ in range(args.rounds):
            for name, images in sources.items():
                for workers in (0, 2):
                    speeds[f"{name}_workers{workers}"].append(images_per_second(images, args.batch, workers))
    median = {k: round(statistics.median(v), 1) for k, v in speeds.items()}
    metrics = {"images": args.images, "size": SIZE, "batch": args.batch, "rounds": args.rounds,
               "images_per_s": median, "cache_build_s": round(build_seconds, 2),
               "ratio_workers0": round(median["cache_workers0"] / median["jpeg_workers0"], 1),
               "ratio_workers2": round(median["cache_workers2"] / median["jpeg_workers2"], 1),
               "target_ratio": TARGET_RATIO}
    metrics["meets_target"] = min(metrics["ratio_workers0"], metrics["ratio_workers2"]) >= TARGET_RATIO
    save_result("data_path", vars(args), metrics, time.time() - start)
    print(metrics)


if __name__ == "__main__":
    main()
