"""The real-data path: xlsa17 metadata (../shared, skipped when absent), a mini archive built
here in the official layout that goes all the way into a model forward pass, and clear errors."""
import json
import os
import pickle
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import timm
import torch
from PIL import Image

from zsl_lib import evaluate
from zsl_lib.pixels import CLIP
from zsl_lib.realdata import wordvectors
from zsl_lib.realdata.dataset import load_benchmark
from zsl_lib.realdata.prepare import attribute_names, prepare
from zsl_lib.xlsa17 import read_index, relative_to_image_folder
from zsl_lib.train import TrainConfig, train
from zsl_lib.vspcn import VSPCN, preset

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data" / "zsl_benchmarks"
needs_shared = pytest.mark.skipif(not SHARED.exists(), reason="real xlsa17 metadata (../shared) not present")

# From the metadata's README: classes, seen / unseen, attributes, trainval, test_seen,
# test_unseen, and the class-level validation split (trainclasses1 / valclasses1).
FACTS = {"CUB": (200, 150, 50, 312, 7057, 1764, 2967, 100, 50),
         "SUN": (717, 645, 72, 102, 10320, 2580, 1440, 580, 65),
         "AWA2": (50, 40, 10, 85, 23527, 5882, 7913, 27, 13)}


@needs_shared
@pytest.mark.parametrize("ds", sorted(FACTS))
def test_the_real_metadata_gives_the_listed_counts(ds):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        index = read_index(SHARED / ds, ds)
    labels, sp = np.asarray(index["labels"]), {k: np.asarray(v) for k, v in index["splits"].items()}
    got = (len(index["class_names"]), len(np.unique(labels[sp["trainval"]])), len(np.unique(labels[sp["test_unseen"]])),
           len(index["class_attributes"][0]), len(sp["trainval"]), len(sp["test_seen"]), len(sp["test_unseen"]),
           len(index["trainclasses1"]), len(index["valclasses1"]))
    assert got == FACTS[ds]
    # the class-level validation split partitions the seen classes
    seen = set(np.unique(labels[sp["trainval"]]).tolist())
    assert set(index["trainclasses1"]) | set(index["valclasses1"]) == seen
    assert not set(index["trainclasses1"]) & set(index["valclasses1"])
    leaks = [str(w.message) for w in caught if "leaks test images" in str(w.message)]
    assert (len(leaks) == 2) == (ds != "CUB")          # train_loc and val_loc overlap test_seen on SUN, AWA2
    names = attribute_names(SHARED / ds, SHARED / ds, ds)
    assert len(names) == FACTS[ds][3]
    vectors = wordvectors.load_vectors_file(SHARED / ds / "attribute_w2v.npy", len(names))
    assert vectors.shape == (FACTS[ds][3], 300)


@needs_shared
def test_attribute_names_become_phrases_and_glove_vectors():
    names = attribute_names(SHARED / "CUB", SHARED / "CUB", "CUB")
    assert wordvectors.clean_attribute_name(names[0]) == "bill shape curved up or down"
    assert wordvectors.clean_attribute_name("sailing/ boating") == "sailing boating"
    glove = wordvectors.glove_vectors(names)
    assert glove.shape == (312, 50) and np.abs(glove).sum(1).min() > 0
    with pytest.raises(ValueError, match=r"has vectors for 312 attributes but the split file has 85"):
        wordvectors.load_vectors_file(SHARED / "CUB" / "attribute_w2v.npy", 85)


def test_paths_of_the_authors_machines_are_rewritten():
    assert relative_to_image_folder("/BS/xian/work/data/Animals_with_Attributes2//JPEGImages/antelope/a_1.jpg",
                                    "AWA2") == "antelope/a_1.jpg"
    assert relative_to_image_folder("/BS/Deep_Fragments/work/MSc/CUB_200_2011/CUB_200_2011/images/001.A/x.jpg",
                                    "CUB") == "001.A/x.jpg"
    assert relative_to_image_folder("/BS/Deep_Fragments/work/MSc/data/SUN/images/a/abbey/s.jpg", "SUN") == "a/abbey/s.jpg"
    with pytest.raises(ValueError, match="has no 'JPEGImages/' part"):
        relative_to_image_folder("/data/cub/001.A/x.jpg", "AWA2")


# Per benchmark: where `prepare` finds the images under the data root, the image-path prefix of
# the authors' machines that the xlsa17 lists carry, a class folder and image name, and the file
# of attribute names (under the images' parent folder) with its writer.
ARCHIVES = {
    "CUB": ("CUB/CUB_200_2011/images", "/BS/Deep_Fragments/work/MSc/CUB_200_2011/CUB_200_2011/images/",
            lambda c: (f"{c + 1:03d}.Bird_{c}", f"Bird_{c}_{{j:04d}}.jpg"), "attributes.txt"),
    "SUN": ("SUN/images", "/BS/Deep_Fragments/work/MSc/data/SUN/images/",
            lambda c: (f"a/abbey_{c}", f"sun_{c}_{{j:04d}}.jpg"), "attributes.mat"),
    "AWA2": ("AWA2/Animals_with_Attributes2/JPEGImages", "/BS/xian/work/data/Animals_with_Attributes2//JPEGImages/",
             lambda c: (f"animal_{c}", f"animal_{c}_{{j:05d}}.jpg"), "predicates.txt"),
}


def mini_benchmark(root: Path, dataset: str = "CUB", classes: int = 6, per_class: int = 4, attributes: int = 12) -> Path:
    """An archive shaped like `dataset`'s: JPEGs at their real relative paths, xlsa17 files with
    the original absolute paths and 1-based indices, the attribute names, and the papers' word
    vectors in w2v/. Classes 0-3 are seen (0-2 trainclasses1, 3 valclasses1), 4-5 unseen."""
    image_folder, author_prefix, naming, names_file = ARCHIVES[dataset]
    rng = np.random.default_rng(0)
    folders = [naming(c)[0] for c in range(classes)]
    names = [folder.rsplit("/", 1)[-1] for folder in folders]
    files, labels = [], []
    for c, folder in enumerate(folders):
        for j in range(per_class):
            rel = f"{folder}/{naming(c)[1].format(j=j)}"
            path = root / image_folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(path)
            files.append(author_prefix + rel)
            labels.append(c + 1)
    labels = np.array(labels)
    split = root / "xlsa17" / "data" / dataset
    split.mkdir(parents=True)
    cell = np.empty((len(files), 1), dtype=object)
    for i, f in enumerate(files):
        cell[i, 0] = np.array([f])
    scipy.io.savemat(split / "res101.mat", {"image_files": cell, "labels": labels[:, None],
                                            "features": np.zeros((4, len(files)))})
    index = np.arange(len(files))
    seen = labels <= 4
    first = (index % per_class) == 0
    att = rng.random((attributes, classes))
    class_cell = np.empty((classes, 1), dtype=object)
    for i, n in enumerate(names):
        class_cell[i, 0] = np.array([n])
    scipy.io.savemat(split / "att_splits.mat", {
        "allclasses_names": class_cell, "att": att / np.linalg.norm(att, axis=0), "original_att": 100 * att,
        "trainval_loc": index[seen & ~first][:, None] + 1, "test_seen_loc": index[seen & first][:, None] + 1,
        "test_unseen_loc": index[~seen][:, None] + 1})
    (split / "trainclasses1.txt").write_text("\n".join(names[:3]) + "\n")
    (split / "valclasses1.txt").write_text(names[3] + "\n")
    names_path = (root / image_folder).parent / names_file
    if names_file == "attributes.mat":                      # SUN: a cell array of names
        attribute_cell = np.empty((attributes, 1), dtype=object)
        for i in range(attributes):
            attribute_cell[i, 0] = np.array([f"attribute {i}"])
        scipy.io.savemat(names_path, {"attributes": attribute_cell})
    else:                                                   # CUB "1 has_part::value", AWA2 "1\tname"
        separator, name = (" ", "has_part_{i}::colour_{i}") if dataset == "CUB" else ("\t", "predicate_{i}")
        names_path.write_text("".join(f"{i + 1}{separator}{name.format(i=i)}\n" for i in range(attributes)))
    (root / "w2v").mkdir()                                  # the papers' 300-d attribute vectors, float64 as theirs
    with open(root / "w2v" / f"{dataset}_attribute.pkl", "wb") as f:
        pickle.dump(rng.standard_normal((attributes, 300)), f)
    return root


def test_a_mini_archive_goes_through_the_whole_pipeline_into_a_model(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSL_CACHE", str(tmp_path / "cache"))
    root = mini_benchmark(tmp_path / "data")
    done = subprocess.run([sys.executable, "-m", "zsl_lib", "data", "prepare", "CUB", "--root", str(root)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    index_path = root / "CUB_index.json"
    index = json.loads(index_path.read_text())
    assert index["files"][0] == "001.Bird_0/Bird_0_0000.jpg" and index["labels"][0] == 0
    assert index["attribute_names"][0] == "has_part_0::colour_0"

    world = load_benchmark(index_path, 224, CLIP, log=None)
    assert world.images.shape == (24, 224, 224, 3) and world.images.dtype == np.uint8
    assert list(world.seen_classes) == [0, 1, 2, 3] and list(world.unseen_classes) == [4, 5]
    sp = world.splits
    assert set(sp["val_unseen"]) == set(np.flatnonzero(np.isin(world.labels, [3]) & np.isin(np.arange(24), sp["trainval"])))
    assert not set(sp["train"]) & set(sp["val_seen"]) and set(sp["train"]) | set(sp["val_seen"]) | set(sp["val_unseen"]) == set(sp["trainval"])
    assert not set(sp["val_seen"]) & set(sp["test_seen"])

    vectors = np.random.default_rng(1).standard_normal((12, 300)).astype(np.float32)
    with open(tmp_path / "w2v.pkl", "wb") as f:
        pickle.dump(vectors, f)
    loaded = wordvectors.load_vectors_file(tmp_path / "w2v.pkl", 12)
    assert np.array_equal(loaded, vectors)
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0)
    att = world.class_attributes / np.linalg.norm(world.class_attributes, axis=1, keepdims=True)
    model = VSPCN(vit, torch.tensor(loaded), torch.tensor(att), torch.tensor(world.seen_classes),
                  preset("paper_default").for_dataset("CUB"))
    x = world.normalize(torch.from_numpy(np.array(world.images[:2])))            # (2, 3, 224, 224), CLIP statistics
    assert x.shape == (2, 3, 224, 224) and abs(float(x.mean())) < 1.0
    with torch.no_grad():
        assert model(x).shape == (2, 6)
    tv = sp["trainval"]
    train(model, world.images[tv], world.labels[tv], TrainConfig(steps=1, batch_size=4, device="cpu"),
          log=lambda *_: None, normalize=world.normalize)
    report = evaluate.evaluate(model, world, 0.0, "eq19", "cpu")
    assert 0.0 <= report["H"] <= 1.0


def test_bad_inputs_give_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSL_CACHE", str(tmp_path / "cache"))
    with pytest.raises(FileNotFoundError, match=r"the data root .*missing does not exist; create it and put CUB_200_2011.tgz"):
        prepare("CUB", tmp_path / "missing", log=None)
    root = mini_benchmark(tmp_path / "data")
    with pytest.raises(FileNotFoundError, match=r"no att_splits.mat for SUN .*xlsa17.zip"):
        prepare("SUN", root, log=None)

    image = root / "CUB" / "CUB_200_2011" / "images" / "002.Bird_1" / "Bird_1_0002.jpg"
    saved = image.read_bytes()
    image.unlink()
    with pytest.raises(FileNotFoundError, match=r"1 of 24 images are missing .*Bird_1_0002.jpg.*CUB_200_2011.tgz"):
        prepare("CUB", root, log=None)
    image.write_bytes(b"truncated")
    index_path = prepare("CUB", root, log=None)
    with pytest.raises(ValueError, match=r"Bird_1_0002.jpg cannot be decoded .*re-download or replace"):
        load_benchmark(index_path, 224, CLIP, log=None)
    image.write_bytes(saved)

    split = root / "xlsa17" / "data" / "CUB"
    shutil.copy(split / "res101.mat", tmp_path / "res101.mat")
    scipy.io.savemat(split / "res101.mat", {"features": np.zeros((2, 2))})
    with pytest.raises(KeyError, match=r"res101.mat lacks \['image_files', 'labels'\]"):
        prepare("CUB", root, log=None)
    shutil.copy(tmp_path / "res101.mat", split / "res101.mat")
    scipy.io.savemat(tmp_path / "att_splits.mat", {"att": np.zeros((2, 2))})
    with pytest.raises(KeyError, match=r"lacks \['allclasses_names', 'trainval_loc'"):
        read_index_from(tmp_path, split)

    np.save(tmp_path / "vectors.npy", np.zeros((13, 300), np.float32))
    with pytest.raises(ValueError, match=r"vectors.npy has vectors for 13 attributes but the split file has 12"):
        wordvectors.load_vectors_file(tmp_path / "vectors.npy", 12)
    with open(tmp_path / "evil.pkl", "wb") as f:
        pickle.dump(os.system, f)                               # unpickling would hand out a shell
    with pytest.raises(ValueError, match=r"refusing .*only numpy arrays are accepted; convert the vectors to .npy"):
        wordvectors.load_vectors_file(tmp_path / "evil.pkl", 12)
    with pytest.raises(FileNotFoundError, match="no benchmark index at"):
        load_benchmark(tmp_path / "none.json", 224, CLIP)


def read_index_from(folder, split):
    """read_index on a copy of the split folder with another att_splits.mat."""
    copy = folder / "copy"
    shutil.copytree(split, copy)
    shutil.copy(folder / "att_splits.mat", copy / "att_splits.mat")
    return read_index(copy, "CUB")


VIT = ["backbone=vit_tiny_patch16_224"]
RESNET = ["backbone=resnet18", "train.ways=2", "train.shots=2", "train.batch_size=4", "train.steps=2",
          "steps_per_epoch=1", "train.milestones=[1]"]                           # 448 px, episodes of 2 x 2


# CUB's VSPCN runs keep their 20 epochs; SUN's and AWA2's run 2 (their configs' 20 are checked
# by test_full_scale.py), which keeps the suite short.
@pytest.mark.parametrize("config, model_sets", [
    (f"{model}_{dataset}{variant}", RESNET if model == "mgmrn" else VIT + ([] if dataset == "cub" else ["epochs=2"]))
    for model, variant in (("vspcn", ""), ("vspcn", "_code_exact"), ("mgmrn", ""), ("mgmrn", "_official_code"))
    for dataset in ("cub", "sun", "awa2")])
def test_the_cli_trains_and_evaluates_each_shipped_config_on_a_prepared_benchmark(tmp_path, config, model_sets):
    """The shipped real-data configs (a small timm backbone substituted) run their validation protocol on a
    mini CUB archive, and the configuration the run writes has the papers' settings."""
    dataset = config.split("_")[1].upper()
    root = mini_benchmark(tmp_path / "data", dataset)
    env = {**os.environ, "ZSL_CACHE": str(tmp_path / "cache")}
    run = lambda *args: subprocess.run([sys.executable, "-m", "zsl_lib", *args], cwd=ROOT, capture_output=True,
                                       text=True, timeout=600, env=env)
    done = run("data", "prepare", dataset, "--root", str(root))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "trainval 12, test_seen 4, test_unseen 8; validation protocol: train 6, val_seen 3, val_unseen 3" \
        in done.stdout
    sets = [f"data.root={root}", "pretrained=false", "train.log_every=1", *model_sets]
    done = run("train", "--config", str(ROOT / "configs" / f"{config}.yaml"), "--run-dir", str(tmp_path / "run"),
               *sum((["--set", s] for s in sets), []))
    assert done.returncode == 0, done.stderr[-2000:]
    resolved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert resolved["data"]["dataset"] == dataset and resolved["data"]["word_vectors"] == f"w2v/{dataset}_attribute.pkl"
    assert resolved["train"]["grad_clip"] == 0.0
    assert resolved["protocol"] == "validation" and resolved["calibration"] in ("zscore_stacking", "stacking")
    best = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    if config.startswith("vspcn"):
        epochs = 2 if "epochs=2" in model_sets else 20
        assert resolved["epochs"] == epochs and resolved["train"]["steps"] == epochs * (6 // 5)   # epochs of `train`
        assert best["model"]["word_projection"].shape == (300, 192)                   # W_g from 300-d word2vec
    else:
        assert resolved["steps_per_epoch"] == 1 and resolved["data"]["augment"] == "crop_flip"
        assert best["model"]["decoders.0.q.weight"].shape[1] == 300
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert sum("epoch" in m for m in metrics) == (resolved["epochs"] if config.startswith("vspcn") else 2)
    done = run("evaluate", "--checkpoint", str(tmp_path / "run" / "best.pt"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["H"] == best["H"]
