"""The Proposed Split reader, on the real metadata in ../shared (skipped when it is absent)."""
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from zsl_lib import xlsa17

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "zsl_benchmarks"
needs_shared = pytest.mark.skipif(not SHARED.exists(), reason="real xlsa17 metadata (../shared) not present")

# Facts listed in the metadata's README (classes seen/unseen, attributes, split sizes, images).
EXPECTED = {
    "CUB": (150, 50, 312, 7057, 1764, 2967, 11788),
    "SUN": (645, 72, 102, 10320, 2580, 1440, 14340),
    "AWA2": (40, 10, 85, 23527, 5882, 7913, 37322),
}


@needs_shared
@pytest.mark.parametrize("ds", xlsa17.DATASETS)
def test_statistics_of_the_real_split_files(ds):
    s = xlsa17.split_statistics(SHARED / ds)
    got = tuple(s[k] for k in ("seen", "unseen", "attributes", "trainval", "test_seen", "test_unseen", "images"))
    assert got == EXPECTED[ds]
    assert s["seen_unseen_disjoint"]
    # CUB's 312 phrases share their words ("bill shape", colours): their vectors span only 85 dimensions
    assert s["word_vector_rank"] == {"CUB": 85, "SUN": 101, "AWA2": 85}[ds]
    if ds != "CUB":   # the known leak of xlsa17's train_loc / val_loc
        assert s["train_loc_in_test_seen"] > 0 and s["val_loc_in_test_seen"] > 0


@needs_shared
def test_indices_are_zero_based_and_in_range():
    splits = xlsa17.read_att_splits(SHARED / "CUB" / "att_splits.mat")
    n = len(xlsa17.read_index(SHARED / "CUB", "CUB")["labels"])
    everything = np.r_[splits["trainval"], splits["test_seen"], splits["test_unseen"]]
    assert everything.min() == 0 and everything.max() == n - 1 and len(np.unique(everything)) == n


def test_missing_and_wrong_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="att_splits.mat does not exist: it comes with Xian"):
        xlsa17.read_att_splits(tmp_path / "att_splits.mat")
    scipy.io.savemat(tmp_path / "att_splits.mat", {"att": np.zeros((3, 2))})
    with pytest.raises(KeyError, match="lacks .*allclasses_names.*not an xlsa17"):
        xlsa17.read_att_splits(tmp_path / "att_splits.mat")
    (tmp_path / "broken.mat").write_bytes(b"not a mat file at all")
    with pytest.raises(ValueError, match="broken.mat is not a readable .mat file"):
        xlsa17.read_att_splits(tmp_path / "broken.mat")
    with pytest.raises(FileNotFoundError, match="neither res101.mat nor images.tsv"):
        xlsa17.read_image_list(tmp_path, "CUB")
