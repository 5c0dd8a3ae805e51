"""The Proposed Split files of Xian et al. (xlsa17): reading them and their statistics.

A dataset folder holds `att_splits.mat` (class names, attribute matrices, 1-based
`*_loc` image indices) and the image labels, either as the original `res101.mat`
(`labels`, 1-based) or as an `images.tsv` (`label0`, 0-based) in the same order.

    python -m zsl_lib.xlsa17 --root ../shared/data/zsl_benchmarks --out results/xlsa17_stats.json
"""
from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np
import scipy.io

from . import provenance

DATASETS = ("CUB", "SUN", "AWA2")
REQUIRED_KEYS = ("allclasses_names", "att", "trainval_loc", "test_seen_loc", "test_unseen_loc")


def read_att_splits(path: str | Path) -> dict:
    """`att_splits.mat` as numpy: names (C,), att (A, C), and 0-based index arrays per split."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: it comes with Xian et al.'s xlsa17 archive "
                                f"(xlsa17/data/<DATASET>/att_splits.mat)")
    try:
        mat = scipy.io.loadmat(path)
    except Exception as err:  # scipy raises several types for damaged files
        raise ValueError(f"{path} is not a readable .mat file ({err}); download it again") from err
    missing = [k for k in REQUIRED_KEYS if k not in mat]
    if missing:
        raise KeyError(f"{path} lacks {missing}: this is not an xlsa17 att_splits.mat")
    out = {"names": np.array([str(n[0][0]) for n in mat["allclasses_names"]]),
           "att": np.asarray(mat["att"], np.float64)}
    for key in ("trainval_loc", "test_seen_loc", "test_unseen_loc", "train_loc", "val_loc"):
        if key in mat:
            out[key.removesuffix("_loc")] = np.asarray(mat[key]).ravel().astype(np.int64) - 1
    return out


def read_labels(folder: Path) -> np.ndarray:
    """0-based class label of every image, from res101.mat or images.tsv."""
    if (folder / "res101.mat").exists():
        return np.asarray(scipy.io.loadmat(folder / "res101.mat")["labels"]).ravel().astype(np.int64) - 1
    if (folder / "images.tsv").exists():
        with open(folder / "images.tsv") as f:
            return np.array([int(row["label0"]) for row in csv.DictReader(f, delimiter="\t")])
    raise FileNotFoundError(f"{folder} has neither res101.mat nor images.tsv: the image labels are missing")


def split_statistics(folder: str | Path) -> dict:
    """Class, attribute and image counts of one dataset's Proposed Split, and its known leak."""
    folder = Path(folder)
    splits = read_att_splits(folder / "att_splits.mat")
    labels = read_labels(folder)
    seen = np.unique(labels[splits["trainval"]])
    unseen = np.unique(labels[splits["test_unseen"]])
    per_class = np.bincount(labels, minlength=len(splits["names"]))
    stats = {"classes": len(splits["names"]), "seen": len(seen), "unseen": len(unseen),
             "attributes": splits["att"].shape[0], "images": len(labels),
             "trainval": len(splits["trainval"]), "test_seen": len(splits["test_seen"]),
             "test_unseen": len(splits["test_unseen"]),
             "images_per_class_min": int(per_class.min()), "images_per_class_max": int(per_class.max()),
             "seen_unseen_disjoint": bool(not set(seen) & set(unseen))}
    # xlsa17's own train/val lists (SUN, AWA2) overlap test_seen: a validation split built on them leaks.
    for key in ("train", "val"):
        if key in splits:
            stats[f"{key}_loc_in_test_seen"] = int(np.isin(splits[key], splits["test_seen"]).sum())
    return stats


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m zsl_lib.xlsa17", description="Proposed Split statistics")
    parser.add_argument("--root", type=Path, required=True, help="folder with CUB/, SUN/, AWA2/ subfolders")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    start = time.time()
    stats = {ds: split_statistics(args.root / ds) for ds in DATASETS}
    provenance.save_json(args.out, provenance.run_record("xlsa17_stats", {"root": str(args.root)}, [], stats,
                                                         time.time() - start))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
