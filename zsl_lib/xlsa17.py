"""The Proposed Split files of Xian et al. (xlsa17): reading them and their statistics.

A dataset folder holds `att_splits.mat` (class names, attribute matrices, 1-based
`*_loc` image indices), the image list, either as the original `res101.mat`
(`image_files`, absolute paths of the authors' machines, and `labels`, 1-based) or as an
`images.tsv` (`relative_path`, `label0`, 0-based) in the same order, and the class lists
of the class-level validation split (`trainclasses1.txt`, `valclasses1.txt`); optionally the
attribute word vectors (`attribute_w2v.npy`, A x 300), whose rank the statistics report.

    python -m zsl_lib.xlsa17 --root ../shared/data/zsl_benchmarks --out results/xlsa17_stats.json
"""
from __future__ import annotations

import argparse
import csv
import re
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.io

from . import provenance
from .splits import validation_splits

DATASETS = ("CUB", "SUN", "AWA2")
SOURCE = "xlsa17.zip from Xian et al.'s 'Zero-Shot Learning - The Good, the Bad and the Ugly' page (MPI)"
# The part of an original path from which it is relative to the dataset's image folder.
IMAGE_MARKER = {"CUB": "images/", "SUN": "images/", "AWA2": "JPEGImages/"}
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


def relative_to_image_folder(path: str, dataset: str) -> str:
    """'/BS/.../Animals_with_Attributes2//JPEGImages/antelope/x.jpg' -> 'antelope/x.jpg'."""
    path = re.sub(r"/+", "/", path.replace("\\", "/"))
    marker = IMAGE_MARKER[dataset]
    cut = path.rfind(marker)
    if cut < 0:
        raise ValueError(f"image path {path!r} has no '{marker}' part; is this a {dataset} image list?")
    return path[cut + len(marker):]


def read_image_list(folder: Path, dataset: str) -> tuple[list[str], np.ndarray]:
    """Paths relative to the image folder, and 0-based labels, in xlsa17 order."""
    if (folder / "res101.mat").is_file():
        mat = scipy.io.loadmat(folder / "res101.mat")
        missing = [k for k in ("image_files", "labels") if k not in mat]
        if missing:
            raise KeyError(f"{folder / 'res101.mat'} lacks {missing}: use the res101.mat of {SOURCE}")
        files = [str(np.asarray(f).ravel()[0]) for f in np.asarray(mat["image_files"]).ravel()]
        labels = np.asarray(mat["labels"]).ravel().astype(np.int64) - 1
    elif (folder / "images.tsv").is_file():
        with open(folder / "images.tsv") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        files, labels = [r["relative_path"] for r in rows], np.array([int(r["label0"]) for r in rows])
    else:
        raise FileNotFoundError(f"{folder} has neither res101.mat nor images.tsv: the image list of "
                                f"{SOURCE} is missing")
    return [relative_to_image_folder(f, dataset) for f in files], labels


def class_list(folder: Path, name: str, class_names: list[str]) -> list[int]:
    """Class indices of one of xlsa17's class-name lists (e.g. trainclasses1.txt)."""
    path = folder / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; it comes with {SOURCE}")
    position = {n: i for i, n in enumerate(class_names)}
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    unknown = [n for n in names if n not in position]
    if unknown:
        raise ValueError(f"{path} names classes that att_splits.mat does not have: {unknown[:3]}")
    return sorted(position[n] for n in names)


def read_index(split_folder: Path, dataset: str) -> dict:
    """Everything the xlsa17 files of one dataset say: image list, labels, splits, classes, attributes."""
    splits = read_att_splits(split_folder / "att_splits.mat")
    files, labels = read_image_list(split_folder, dataset)
    n_classes = len(splits["names"])
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"labels of the image list run from {labels.min()} to {labels.max()}, but "
                         f"att_splits.mat has {n_classes} classes: the two files are of different datasets")
    names = list(splits["names"])
    # xlsa17's image-level train / val lists (SUN, AWA2): counted and reported, never used
    leaks = {key: int(np.isin(splits[key], splits["test_seen"]).sum()) for key in ("train", "val") if key in splits}
    for key, leak in leaks.items():
        if leak:
            warnings.warn(f"{dataset}: {leak} of the {len(splits[key])} images of xlsa17's {key}_loc are also in "
                          "test_seen_loc; a validation split built on them leaks test images. zsl_lib uses "
                          "the class-level trainclasses1 / valclasses1 split instead")
    return {
        "dataset": dataset, "files": files, "labels": labels.tolist(),
        "class_names": names, "class_attributes": splits["att"].T.tolist(),          # (C, A)
        "splits": {k: splits[k].tolist() for k in ("trainval", "test_seen", "test_unseen")},
        "trainclasses1": class_list(split_folder, "trainclasses1.txt", names),
        "valclasses1": class_list(split_folder, "valclasses1.txt", names),
        "xlsa17_loc_in_test_seen": leaks,
    }


def split_statistics(folder: str | Path, dataset: str | None = None) -> dict:
    """Class, attribute and image counts of one dataset's Proposed Split, its class-level
    validation split, and the known leak of xlsa17's image-level train / val lists."""
    folder = Path(folder)
    dataset = dataset or folder.name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")           # the leak is counted in the statistics instead
        index = read_index(folder, dataset)
    labels = np.asarray(index["labels"])
    sp = {k: np.asarray(v) for k, v in index["splits"].items()}
    per_class = np.bincount(labels, minlength=len(index["class_names"]))
    seen, unseen = np.unique(labels[sp["trainval"]]), np.unique(labels[sp["test_unseen"]])
    val = validation_splits(labels, sp["trainval"], np.asarray(index["valclasses1"]), 0.2, 0)
    stats = {"classes": len(index["class_names"]), "seen": len(seen), "unseen": len(unseen),
             "attributes": len(index["class_attributes"][0]), "images": len(labels),
             "trainval": len(sp["trainval"]), "test_seen": len(sp["test_seen"]), "test_unseen": len(sp["test_unseen"]),
             "images_per_class_min": int(per_class.min()), "images_per_class_max": int(per_class.max()),
             "seen_unseen_disjoint": bool(not set(seen) & set(unseen)),
             "trainclasses1": len(index["trainclasses1"]), "valclasses1": len(index["valclasses1"]),
             **{f"{k}_images": len(v) for k, v in val.items()},
             # xlsa17's own train/val lists (SUN, AWA2) overlap test_seen: a validation split on them leaks
             **{f"{k}_loc_in_test_seen": n for k, n in index["xlsa17_loc_in_test_seen"].items()}}
    word_vectors = folder / "attribute_w2v.npy"
    if word_vectors.exists():
        # The attribute word vectors (A x 300, sums of the phrase's word vectors) span fewer than A
        # dimensions when phrases share words: what a read-out tied to them can express (chapter 7).
        stats["word_vector_rank"] = int(np.linalg.matrix_rank(np.load(word_vectors)))
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
