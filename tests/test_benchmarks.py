"""The benchmark scripts' result files: a partial re-run keeps the other entries, each entry
keeps its own provenance, the goals judge hand-made numbers as stated, and a chapter reading
a missing entry learns the command that makes it."""
import sys
from pathlib import Path

import pytest

from zsl_lib import provenance

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import common  # noqa: E402  (benchmarks/ is not a package)
import mgmrn_step  # noqa: E402
import train_step  # noqa: E402


@pytest.fixture
def two_entries(tmp_path):
    """A results folder whose mgmrn_step.json holds "toy" and "resnet101" from an earlier run."""
    common.save_entries("mgmrn_step", {"backbones": ["toy", "resnet101"], "steps": 8},
                        {"toy": {"ratio": 0.52}, "resnet101": {"ratio": 0.56}}, {"toy": 3.0, "resnet101": 300.0},
                        sha="a" * 40, results=tmp_path)
    return tmp_path


def test_a_partial_rerun_replaces_its_entry_and_keeps_the_others_with_their_provenance(two_entries):
    path = two_entries / "mgmrn_step.json"
    before = provenance.load_json(path)["metrics"]["resnet101"]
    common.save_entries("mgmrn_step", {"backbones": ["toy"], "steps": 20}, {"toy": {"ratio": 0.48}}, {"toy": 2.0},
                        sha="b" * 40, results=two_entries)
    record = provenance.load_json(path)
    assert record["metrics"]["resnet101"] == before
    assert before["provenance"]["git_sha"] == "a" * 40 and before["provenance"]["wall_time_s"] == 300.0
    toy = record["metrics"]["toy"]
    assert toy["ratio"] == 0.48
    assert toy["provenance"]["git_sha"] == "b" * 40
    assert toy["provenance"]["config"] == {"backbones": ["toy"], "steps": 20}
    assert toy["provenance"]["wall_time_s"] == 2.0 and "environment" in toy["provenance"]
    assert record["git_sha"] == "b" * 40                    # the top level: the run that wrote last
    assert "b" * 12 in provenance.describe(record)
    assert not list(two_entries.glob(".*.tmp"))             # written through a renamed temporary file


def test_goals_judge_hand_made_numbers():
    vspcn = train_step.verdict(time_ratio=1.5, flops_ratio=1.4)
    assert vspcn["overhead"] == pytest.approx(1.071, abs=1e-3) and vspcn["meets_goal"]
    assert not train_step.verdict(time_ratio=1.6, flops_ratio=1.4)["meets_goal"]        # overhead 1.14
    assert vspcn["goal"]["at_most"] == 1.10 and vspcn["goal"]["measure"] == "overhead"
    assert not common.judged(mgmrn_step.GOAL, 0.52)["meets_goal"]
    assert common.judged(mgmrn_step.GOAL, 0.50)["meets_goal"]
    assert mgmrn_step.GOAL["measure"] == "ratio"


def test_a_missing_entry_or_file_names_itself_and_the_command_that_makes_it(two_entries):
    path = two_entries / "mgmrn_step.json"
    assert provenance.stored_entry(path, "toy", remake="unused")["ratio"] == 0.52
    command = "python benchmarks/mgmrn_step.py --backbones vit"
    with pytest.raises(provenance.MissingResult, match="has no entry 'vit'.*'toy', 'resnet101'.*--backbones vit"):
        provenance.stored_entry(path, "vit", remake=command)
    with pytest.raises(provenance.MissingResult, match="run_cost.json is not stored; make it with: python"):
        provenance.stored_entry(two_entries / "run_cost.json", "vspcn:paper_default", remake="python x.py")
