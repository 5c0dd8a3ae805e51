"""From the official archives to a compact index: `python -m zsl_lib data prepare CUB --root DIR`
(or `data prepare own --root DIR` for a dataset of your own in the layout of `zsl_lib.realdata.own`).

The user downloads the images (CUB_200_2011, the SUN attribute images, AwA2's
JPEGImages) and Xian et al.'s xlsa17 split files into one folder. `prepare` finds both,
reads the image list (xlsa17's `res101.mat`: `image_files`, absolute paths of the
authors' machines, and 1-based `labels`; or an `images.tsv`), rewrites every path onto
the user's image folder, checks that every image is there, and writes
`<root>/<DS>_index.json`: relative image paths, labels, the Proposed Split, the
class-level validation split (`trainclasses1` / `valclasses1`) and the attributes.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import scipy.io

from .. import xlsa17
from ..runtime import atomic_open
from ..splits import validation_splits
from . import own

SOURCES = {
    "CUB": "CUB_200_2011.tgz from the Caltech-UCSD Birds-200-2011 page (Caltech DATA)",
    "SUN": "SUNAttributeDB_images.tar.gz from the SUN Attribute Database page (Brown University)",
    "AWA2": "AwA2-data.zip (JPEGImages) from the Animals with Attributes 2 page (ISTA)",
    "xlsa17": xlsa17.SOURCE,
    own.NAME: f"your own files in the layout of zsl_lib.realdata.own ({own.HELP})",
}
IMAGE_FOLDERS = {
    "CUB": ["CUB/CUB_200_2011/images", "CUB_200_2011/images", "CUB/images"],
    "SUN": ["SUN/images", "images", "SUN/SUNAttributeDB_images/images"],
    "AWA2": ["AWA2/Animals_with_Attributes2/JPEGImages", "Animals_with_Attributes2/JPEGImages", "AWA2/JPEGImages"],
}
SPLIT_FOLDERS = ["xlsa17/data/{ds}", "{ds}/xlsa17", "{ds}", "data/{ds}"]
ATTRIBUTE_NAME_FILES = {"CUB": ["attributes.txt", "../attributes.txt", "attributes/attributes.txt"],
                        "SUN": ["attributes.mat"], "AWA2": ["predicates.txt", "../predicates.txt"]}


def find_split_folder(root: Path, dataset: str) -> Path:
    tried = [root / p.format(ds=dataset) for p in SPLIT_FOLDERS]
    for folder in tried:
        if (folder / "att_splits.mat").is_file():
            return folder
    raise FileNotFoundError(f"no att_splits.mat for {dataset} under {root} (looked in "
                            f"{[str(t.relative_to(root)) for t in tried]}); it comes with {SOURCES['xlsa17']}: "
                            f"unpack it into {root} (giving {root}/xlsa17/data/{dataset}/)")


def find_image_folder(root: Path, dataset: str, first: str) -> Path:
    tried = [root / p for p in IMAGE_FOLDERS[dataset]]
    for folder in tried:
        if (folder / first).is_file():
            return folder
    raise FileNotFoundError(f"the {dataset} images are not under {root}: looked for {first} in "
                            f"{[str(t.relative_to(root)) for t in tried]}. They come from {SOURCES[dataset]}; "
                            f"unpack it into {root}")


def attribute_names(split_folder: Path, image_folder: Path, dataset: str) -> list[str] | None:
    """The attribute names, if their file is beside the split files or the images."""
    for base in (split_folder, image_folder.parent):
        for name in ATTRIBUTE_NAME_FILES[dataset]:
            path = base / name
            if not path.is_file():
                continue
            if path.suffix == ".mat":
                return [str(np.asarray(a).ravel()[0]) for a in np.asarray(scipy.io.loadmat(path)["attributes"]).ravel()]
            return [line.split(maxsplit=1)[-1].strip() for line in path.read_text().splitlines() if line.strip()]
    return None


def prepare(dataset: str, root: str | Path, log=print) -> Path:
    """Write `<root>/<dataset>_index.json` and return its path; every problem is one clear error."""
    if dataset not in (*xlsa17.DATASETS, own.NAME):
        raise ValueError(f"dataset {dataset!r}: choose one of {[*xlsa17.DATASETS, own.NAME]}")
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        wanted = SOURCES[dataset] if dataset == own.NAME else f"{SOURCES[dataset]} and {SOURCES['xlsa17']}"
        raise FileNotFoundError(f"the data root {root} does not exist; create it and put {wanted} into it")
    if dataset == own.NAME:
        index, image_folder = own.read_index(root), root / "images"
    else:
        split_folder = find_split_folder(root, dataset)
        index = xlsa17.read_index(split_folder, dataset)
        image_folder = find_image_folder(root, dataset, index["files"][0])
        index["attribute_names"] = attribute_names(split_folder, image_folder, dataset)
    files = index["files"]
    missing = [f for f in files if not (image_folder / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} of {len(files)} images are missing under {image_folder} "
                                f"(first: {missing[:3]}); "
                                + ("check images.txt against the files under images/" if dataset == own.NAME
                                   else f"re-download {SOURCES[dataset]}"))
    index["images_root"] = str(image_folder)
    out = root / f"{dataset}_index.json"
    with atomic_open(out) as f:
        json.dump(index, f)
    if log:
        splits = {k: np.asarray(v) for k, v in index["splits"].items()}
        labels = np.asarray(index["labels"])
        held_out = validation_splits(labels, splits["trainval"], np.asarray(index["valclasses1"]), 0.2, 0)
        log(f"{dataset}: {len(files)} images, {len(index['class_names'])} classes, "
            f"{len(index['class_attributes'][0])} attributes -> {out}\n"
            f"splits: {', '.join(f'{k} {len(splits[k])}' for k in ('trainval', 'test_seen', 'test_unseen'))}; "
            f"validation protocol: {', '.join(f'{k} {len(v)}' for k, v in held_out.items())}")
    return out
