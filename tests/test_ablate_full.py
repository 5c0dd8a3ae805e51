"""The ablation grids at full scale (zsl_lib.ablate_full): which shipped configuration a row starts
from, what its validation and final runs are, one cell run end to end on a mini CUB archive
(a small timm backbone substituted), resuming, and the GPU-hour estimate against a hand count."""
import json
from pathlib import Path

import pytest
from test_realdata import mini_benchmark

from zsl_lib import ablate, ablate_full, gpu_cost, provenance, runconfig
from zsl_lib.realdata.prepare import prepare

ROOT = Path(__file__).resolve().parent.parent
VSPCN, MGMRN = ablate.load_grid("vspcn"), ablate.load_grid("mgmrn")


def test_every_row_starts_from_its_presets_shipped_config_on_every_dataset():
    for grid in (VSPCN, MGMRN):
        for dataset in ablate_full.DATASETS:
            for row in grid.rows:
                cfg = ablate_full.run_config(grid, row, dataset, "/d", 3, "cuda")
                assert (cfg.model, cfg.preset, cfg.data.dataset, cfg.data.root) == \
                    (grid.family.name, row.preset, dataset, "/d")
                assert cfg.protocol == "validation" and cfg.train.seed == 3 and cfg.train.device == "cuda"
    path = ablate_full.config_path
    assert path("mgmrn", "SUN", "official_code").name == "mgmrn_sun_official_code.yaml"
    assert path("mgmrn", "AWA2", "paper_free_readout").name == "mgmrn_awa2.yaml"
    assert path("vspcn", "AWA2", "code_exact").name == "vspcn_awa2_code_exact.yaml"
    official = ablate_full.run_config(MGMRN, MGMRN.row("official_code_full"), "AWA2", "/d", 0, "cuda")
    assert (official.train.lr, official.train.ways, official.train.decay) == (5e-5, 16, 0.5)   # the released yaml
    assert ablate_full.run_config(VSPCN, VSPCN.row("code_exact_row8"), "SUN", "/d", 0, "cuda").train.lr == 1e-4


def test_a_rows_model_options_reach_the_run_configuration():
    levels = ablate_full.run_config(MGMRN, MGMRN.row("part_tokens_L1"), "CUB", "/d", 0, "cuda")
    assert levels.model_options == {"rfm_mode": "part_tokens", "num_levels": 1}
    ced = ablate_full.run_config(VSPCN, VSPCN.row("lambda_ced_0.2"), "CUB", "/d", 0, "cuda")
    assert ced.model_options["losses"]["lambda_ced"] == 0.2 and ced.model_options["losses"]["lambda_skd"] == 0.18
    row4 = ablate_full.run_config(VSPCN, VSPCN.row("table2_row4"), "CUB", "/d", 0, "cuda")
    assert row4.model_options == dict(VSPCN.row("table2_row4").model)
    assert ablate_full.run_config(VSPCN, VSPCN.row("table2_row8"), "CUB", "/d", 0, "cuda",
                                  ["train.lr=0.0002"]).train.lr == 2e-4


def test_the_final_run_trains_as_many_epochs_as_the_best_validation_epoch_at_its_gamma():
    vspcn_cub = runconfig.load(ROOT / "configs" / "vspcn_cub.yaml")
    final = vspcn_cub.final({"epoch": 7, "gamma": 0.25})
    assert (final.protocol, final.gamma, final.epochs) == ("final", 0.25, 7)
    assert final.resolved_steps(7057).train.steps == 7 * 1411                  # 7 passes over trainval
    mgmrn_cub = runconfig.load(ROOT / "configs" / "mgmrn_cub.yaml")
    final = mgmrn_cub.final({"epoch": 12, "gamma": 1.5})
    assert final.train.steps == 12 * 300 and final.train.milestones == (3000, 6000) and final.epochs is None
    with pytest.raises(ValueError, match="a final run follows a validation run"):
        final.final({"epoch": 1, "gamma": 0.0})


def test_a_cell_runs_validation_then_final_and_resumes_without_redoing_finished_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSL_CACHE", str(tmp_path / "cache"))
    root = mini_benchmark(tmp_path / "data")
    prepare("CUB", root, log=None)
    row, out, runs = VSPCN.row("table2_row1"), tmp_path / "results", tmp_path / "runs"
    sets = ["backbone=vit_tiny_patch16_224", "pretrained=false", "epochs=2"]
    said = []
    record = ablate_full.run_cell(VSPCN, row, "CUB", str(root), 0, "cpu", out, runs, sets, log=said.append)
    path = out / "vspcn_CUB" / "table2_row1_seed0.json"
    assert provenance.load_json(path) == record
    best, final = record["metrics"]["validation"], record["final"]
    assert 1 <= best["epoch"] <= 2 and (final["protocol"], final["gamma"], final["epochs"]) == \
        ("final", best["gamma"], best["epoch"])
    assert record["metrics"]["gamma_source"] == "config (chosen on validation)"
    assert 0 <= record["metrics"]["H"] <= 100 and record["config"]["validation"]["preset"] == "paper_default"
    folder = runs / "vspcn_CUB" / "table2_row1_seed0"
    written = json.loads((folder / "final" / "config.json").read_text())
    assert written["train"]["steps"] == best["epoch"] * (12 // 5)             # the chosen epochs of trainval

    assert ablate_full.run_cell(VSPCN, row, "CUB", str(root), 0, "cpu", out, runs, sets, log=said.append) == record
    assert said[-1].endswith("stored, skipped")
    path.unlink()                                   # as if the runner died after the validation run
    (folder / "final" / "result.json").unlink()
    said.clear()
    again = ablate_full.run_cell(VSPCN, row, "CUB", str(root), 0, "cpu", out, runs, sets, log=said.append)
    assert said[0].endswith("validation: finished before, reused")
    assert again["metrics"]["validation"] == best and again["metrics"]["H"] == record["metrics"]["H"]
    changed = ablate_full.run_cell(VSPCN, row, "CUB", str(root), 1, "cpu", out, runs, sets, log=said.append)
    assert changed["seeds"] == [1] and (out / "vspcn_CUB" / "table2_row1_seed1.json").is_file()


def test_the_gpu_hour_estimate_is_the_counted_work_over_the_stated_throughput():
    flops = provenance.load_json(ablate_full.FLOPS)["metrics"]["vspcn"]
    cub = provenance.load_json(ablate_full.SIZES)["metrics"]["CUB"]
    validation_steps, final_steps = 20 * (3760 // 5), 20 * (7057 // 5)         # 20 epochs of train, of trainval
    step = 1e9 * (flops["train_gflop_fixed"] + 5 * flops["train_gflop_per_image"])
    scored = 20 * (cub["val_seen_images"] + cub["val_unseen_images"]) + cub["test_seen"] + cub["test_unseen"]
    by_hand = (validation_steps + final_steps) * step + scored * 1e9 * flops["score_gflop_per_image"]
    hours = ablate_full.gpu_hours(VSPCN, [(VSPCN.row("table2_row8"), 0)], "CUB")
    assert hours == pytest.approx(by_hand / (gpu_cost.UTILISATION * gpu_cost.PEAK_BF16) / 3600)
    whole = ablate_full.gpu_hours(VSPCN, ablate_full.cells(VSPCN, list(VSPCN.rows), None), "CUB")
    assert whole == pytest.approx(19 * hours)       # every row counted at the full model's step: 19 cells


def test_the_command_line_reports_a_bad_row_or_missing_data_in_one_line(capsys):
    for args, message in ((["--rows", "nope"], "grid vspcn has no row 'nope'"),
                          (["--rows", "table2_row1"], "no benchmark index at /nowhere/CUB_index.json")):
        with pytest.raises(SystemExit) as stop:
            ablate.main(["vspcn", "--dataset", "CUB", "--root", "/nowhere", "--seeds", "0", *args])
        err = capsys.readouterr().err
        assert stop.value.code == 2 and len(err.strip().splitlines()) == 1 and message in err
