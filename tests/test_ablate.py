"""The ablation grid runner: declarations that say what the papers' tables say, cells that are
skipped once stored, and a runner that can be killed mid-cell and restarted."""
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from zsl_lib import ablate, provenance
from zsl_lib.mgmrn import table3_row
from zsl_lib.vspcn import table2_row

# Two quick Mg-MRN cells on the smoke world (10 final steps): the baseline and one stage of part_tokens.
QUICK = ["mgmrn", "--mode", "smoke", "--steps", "10", "--worlds", "0", "--threads", "1",
         "--rows", "table3_row1", "part_tokens_L1"]


def configs(grid):
    return {row.key: ablate.cell_config(grid, ablate.Cell(grid.name, row.key, 0, 0), ablate.Settings())
            for row in grid.rows}


def test_grid_rows_are_the_papers_rows_and_all_distinct():
    vspcn, mgmrn = ablate.load_grid("vspcn"), ablate.load_grid("mgmrn")
    for grid in (vspcn, mgmrn):
        models = [json.dumps(c["model"], sort_keys=True) for c in configs(grid).values()]
        assert len(set(models)) == len(models), f"two rows of {grid.name} are the same configuration"
    v = configs(vspcn)
    for r in range(1, 9):
        assert v[f"table2_row{r}"]["model"] == json.loads(json.dumps(provenance_dict(table2_row(r))))
    assert v["code_exact_row8"]["model"] == json.loads(json.dumps(provenance_dict(table2_row(8, "code_exact"))))
    assert v["lambda_ced_3.2"]["model"]["losses"]["lambda_ced"] == 3.2
    assert v["lambda_ced_3.2"]["model"]["losses"]["lambda_skd"] == v["table2_row8"]["model"]["losses"]["lambda_skd"]
    m = configs(mgmrn)
    for r in range(1, 7):
        assert m[f"table3_row{r}"]["model"] == provenance_dict(table3_row(r, "paper_free_readout"))
    assert m["part_tokens_Np7"]["model"] | {"num_parts": 5} == m["part_tokens"]["model"]
    # the full models carry a second training seed, the run-to-run spread of the paired statistics
    assert {c.seed for c in ablate.cells(vspcn, [0]) if c.row == "table2_row8"} == {0, 1}
    assert ablate.cells(mgmrn, [0, 1])[0] == ablate.Cell("mgmrn", "table3_row6", 0, 0)


def provenance_dict(cfg):
    from dataclasses import asdict
    return json.loads(json.dumps(asdict(cfg)))


def test_a_grid_refuses_unknown_rows_in_its_sections():
    grid = ablate.load_grid("mgmrn")
    with pytest.raises(ValueError, match="unknown rows"):
        replace(grid, sections={"Table III": ("table3_row1", "table3_row9")})
    with pytest.raises(ValueError, match="has no row"):
        ablate.cells(grid, [0], rows=["nonsense"])


def test_stored_cells_are_skipped_and_a_changed_configuration_runs_again(tmp_path):
    grid = ablate.load_grid("mgmrn")
    settings = ablate.Settings(mode="smoke", steps=10, threads=1)
    todo = ablate.cells(grid, [0], rows=["table3_row1"])
    threads = torch.get_num_threads()
    record = ablate.run_cell(todo[0], settings, tmp_path, sha="test")
    assert torch.get_num_threads() == threads, "a cell run in this process must leave torch's threads as they were"
    assert record["metrics"]["T1"] > 0 and record["world"] == 0 and record["validation_steps"] < 10
    assert 0 < record["cpu_time_s"] <= 1.5 * record["wall_time_s"] + 1       # one thread: CPU time at most wall time
    assert "1 of 1 cells stored" in ablate.status(grid, todo, settings, tmp_path, jobs=2)
    assert ablate.pending(grid, todo, settings, tmp_path) == []
    assert ablate.pending(grid, todo, replace(settings, steps=12), tmp_path) == todo
    path = ablate.cell_path(tmp_path, todo[0])
    stale = provenance.load_json(path)
    stale["config"]["protocol"] = ablate.PROTOCOL - 1
    provenance.save_json(path, stale)
    assert ablate.pending(grid, todo, settings, tmp_path) == todo


def test_the_runner_killed_mid_cell_restarts_without_losing_or_redoing_cells(tmp_path):
    interrupted, uninterrupted = tmp_path / "interrupted", tmp_path / "uninterrupted"
    first = interrupted / "mgmrn" / "table3_row1_world0_seed0.json"
    second = interrupted / "mgmrn" / "part_tokens_L1_world0_seed0.json"
    command = [sys.executable, "-m", "zsl_lib.ablate", *QUICK, "--out", str(interrupted)]
    runner = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not first.exists() and runner.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert first.exists() and not second.exists(), "the first cell should be stored and the second running"
    time.sleep(1.0)
    os.killpg(runner.pid, signal.SIGKILL)
    runner.wait()
    assert not second.exists()
    first_bytes = first.read_bytes()
    subprocess.run(command, check=True, capture_output=True)
    assert first.read_bytes() == first_bytes, "a finished cell was run again"
    subprocess.run([sys.executable, "-m", "zsl_lib.ablate", *QUICK, "--rows", "part_tokens_L1",
                    "--out", str(uninterrupted)], check=True, capture_output=True)
    restarted = provenance.load_json(second)
    reference = provenance.load_json(uninterrupted / "mgmrn" / second.name)
    assert restarted["config"] == reference["config"]
    assert restarted["metrics"] == reference["metrics"]


def workers_of(pid):
    """The multiprocessing workers whose parent is `pid` (Linux /proc)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
            command = (status.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid) and b"spawn_main" in command:
            found.append(int(status.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_workers_end_when_the_runner_is_killed(tmp_path):
    runner = subprocess.Popen([sys.executable, "-m", "zsl_lib.ablate", *QUICK, "--jobs", "2", "--out", str(tmp_path)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(workers_of(runner.pid)) < 2 and time.time() < deadline:
        time.sleep(0.2)
    workers = workers_of(runner.pid)
    assert len(workers) == 2
    runner.kill()                                                         # the runner alone, not its group
    runner.wait()
    deadline = time.time() + 30
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.time() < deadline:
        time.sleep(0.2)
    alive = [pid for pid in workers if Path(f"/proc/{pid}").exists()
             and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()]
    assert not alive, f"workers {alive} outlived the runner"
