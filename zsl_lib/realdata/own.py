"""A user's own dataset in a plain layout, read into the index `prepare` writes for CUB, SUN and AWA2.

    <root>/
      images/...                      the image files, in any sub-folders
      classes.txt                     one class name a line; the order gives the class ids
      class_attributes.txt            one row a class (in classes.txt order): A numbers, spaces or commas
      attributes.txt                  optional: one attribute name a line (for word vectors computed
                                      from a text embedding file, or the glove50 stand-in)
      images.txt                      '<path under images/> <class name>' a line
      splits/trainval.txt             image paths (as in images.txt), one a line: the seen classes' training images
      splits/test_seen.txt            held-out images of the seen classes
      splits/test_unseen.txt          all images of the unseen classes
      splits/trainclasses1.txt        class names: the seen classes the validation protocol trains on
      splits/valclasses1.txt          class names: the seen classes it holds out as pseudo-unseen
      w2v/own_attribute.pkl           (A, d) attribute word vectors (.pkl or .npy; data.word_vectors)

This is the Proposed Split of Xian et al. in files: test_unseen holds every image of classes
that never appear in trainval, and trainclasses1 + valclasses1 are the seen classes.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

NAME = "own"
LAYOUT = ("images/", "classes.txt", "class_attributes.txt", "images.txt", "splits/trainval.txt",
          "splits/test_seen.txt", "splits/test_unseen.txt", "splits/trainclasses1.txt", "splits/valclasses1.txt")
HELP = "see the layout in zsl_lib/realdata/own.py or appendix A of the book"


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: a dataset of your own needs {', '.join(LAYOUT)} ({HELP})")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _class_ids(path: Path, position: dict[str, int]) -> list[int]:
    names = _lines(path)
    unknown = [n for n in names if n not in position]
    if unknown:
        raise ValueError(f"{path} names classes that classes.txt does not have: {unknown[:3]}; fix the names")
    return sorted(position[n] for n in names)


def read_index(root: Path) -> dict:
    """Everything the layout's files say, checked, in the form of `xlsa17.read_index`."""
    classes = _lines(root / "classes.txt")
    position = {n: i for i, n in enumerate(classes)}
    if len(position) != len(classes):
        raise ValueError(f"{root / 'classes.txt'} lists a class twice; keep one line a class")
    rows = []
    for number, line in enumerate(_lines(root / "class_attributes.txt"), start=1):
        try:
            rows.append([float(v) for v in re.split(r"[,\s]+", line)])
        except ValueError:
            raise ValueError(f"{root / 'class_attributes.txt'} line {number}: {line[:40]!r} is not a row of numbers; "
                             "write A numbers separated by spaces or commas") from None
    if len(rows) != len(classes) or len({len(r) for r in rows}) != 1:
        raise ValueError(f"{root / 'class_attributes.txt'} has {len(rows)} rows of lengths {sorted({len(r) for r in rows})}; "
                         f"it needs one row of A numbers for each of the {len(classes)} classes of classes.txt")
    files, labels = [], []
    for number, line in enumerate(_lines(root / "images.txt"), start=1):
        path, _, name = line.rpartition(" ")
        if name not in position:
            raise ValueError(f"{root / 'images.txt'} line {number}: class {name!r} is not in classes.txt; "
                             "write '<path under images/> <class name>'")
        files.append(path.strip())
        labels.append(position[name])
    row_of = {f: i for i, f in enumerate(files)}
    splits = {}
    for key in ("trainval", "test_seen", "test_unseen"):
        listed = _lines(root / "splits" / f"{key}.txt")
        unknown = [f for f in listed if f not in row_of]
        if unknown:
            raise ValueError(f"{root / 'splits' / f'{key}.txt'} lists images that images.txt does not: {unknown[:3]}")
        splits[key] = sorted(row_of[f] for f in listed)
    labels_array = np.asarray(labels)
    seen, unseen = set(labels_array[splits["trainval"]]), set(labels_array[splits["test_unseen"]])
    if seen & unseen:
        raise ValueError(f"classes {[classes[c] for c in sorted(seen & unseen)][:3]} have images in both "
                         "splits/trainval.txt and splits/test_unseen.txt; an unseen class has no training images")
    tested = set(labels_array[splits["test_seen"]])
    if tested - seen:
        raise ValueError(f"splits/test_seen.txt holds images of {[classes[c] for c in sorted(tested - seen)][:3]}, which "
                         "have no images in splits/trainval.txt; test_seen is for the seen classes only")
    shared = set(splits["trainval"]) & set(splits["test_seen"])
    if shared:
        raise ValueError(f"{len(shared)} images are in both splits/trainval.txt and splits/test_seen.txt (e.g. "
                         f"{files[min(shared)]}); a test image must not be trained on")
    train1 = _class_ids(root / "splits" / "trainclasses1.txt", position)
    val1 = _class_ids(root / "splits" / "valclasses1.txt", position)
    if set(train1) & set(val1) or set(train1) | set(val1) != seen:
        raise ValueError("splits/trainclasses1.txt and splits/valclasses1.txt must divide the seen classes (those "
                         "of splits/trainval.txt) between them, each class in exactly one")
    attributes = root / "attributes.txt"
    names = _lines(attributes) if attributes.is_file() else None
    if names is not None and len(names) != len(rows[0]):
        raise ValueError(f"{attributes} names {len(names)} attributes but class_attributes.txt has {len(rows[0])} columns")
    return {"dataset": NAME, "files": files, "labels": labels, "class_names": classes,
            "class_attributes": rows, "splits": splits, "trainclasses1": train1, "valclasses1": val1,
            "attribute_names": names}
