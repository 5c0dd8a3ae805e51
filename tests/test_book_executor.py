"""The book's executor (zsl_lib.book): which chapters and modes it finds, a chapter executed by
papermill with parameters that are not its defaults, and a partial run that keeps the other
chapters' stored times."""
import json
from pathlib import Path

import pytest

from zsl_lib import book

ROOT = Path(__file__).resolve().parent.parent


def test_the_chapters_are_the_notebooks_of_the_table_of_contents_in_order():
    names = [nb.stem for nb in book.chapters()]
    assert names[0] == "01_gzsl_problem" and "appendix_a_real_data" in names
    assert names == sorted(names, key=names.index) and len(names) == len(set(names))
    assert book.chapter_modes(ROOT / "book" / "01_gzsl_problem.ipynb") == ("smoke", "book", "full")
    assert book.chapter_modes(ROOT / "book" / "08_reproducing_vspcn_ablations.ipynb") == ("smoke", "book")
    assert [nb.stem for nb in book.select(book.chapters(), ["05"])] == ["05_losses_and_calibrated_inference"]
    with pytest.raises(ValueError, match=r"--chapters \['99'\]: no chapter of _toc.yml starts with that"):
        book.select(book.chapters(), ["99"])


def test_a_chapter_runs_with_the_given_parameters_and_its_time_is_stored_beside_the_others(tmp_path):
    timings = tmp_path / "timings.json"
    book.store_timing("smoke", "01_gzsl_problem", 12.5, 20.0, 0.1, {"MODE": "smoke"}, "abc", timings)
    seconds = book.execute("book", tmp_path / "out", ["appendix_a"], seed=3, device="cpu", timings=timings)
    assert list(seconds) == ["appendix_a_real_data"]
    executed = json.loads((tmp_path / "out" / "appendix_a_real_data.ipynb").read_text())
    assert executed["metadata"]["papermill"]["parameters"] == {"MODE": "book", "SEED": 3, "DEVICE": "cpu"}
    last = "".join(executed["cells"][-1]["outputs"][0]["text"])
    assert "(MODE=book, SEED=3)" in last                              # the kernel ran with them
    stored = json.loads(timings.read_text())["modes"]
    assert stored["smoke"]["01_gzsl_problem"]["seconds"] == 12.5       # the earlier entry survives
    entry = stored["book"]["appendix_a_real_data"]
    assert entry["seconds"] == pytest.approx(seconds["appendix_a_real_data"], abs=0.1)
    assert entry["parameters"]["SEED"] == 3 and "environment" in entry
    assert 0 < entry["cpu_seconds"] and entry["load_before"] >= 0             # the kernel's own CPU time
