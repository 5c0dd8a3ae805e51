"""The training engine: exact resume after SIGKILL, torchrun / gloo, checkpoints, configs, the CLI."""
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from zsl_lib import checkpoint, runconfig
from zsl_lib.train import EpochSampler, TrainConfig, lr_factor, train
from zsl_lib.vspcn import LossWeights, preset
from zsl_lib.vspcn.experiment import build

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "vspcn_toybirds.yaml"
# The smoke world's trainval has 1,200 images: 75 steps of 16 make an epoch, so 80 steps cross one.
SMALL = ["data.size=smoke", "protocol=final", "train.steps=80", "train.batch_size=16", "train.log_every=5",
         "train.checkpoint_every=4"]


def cli(run_dir, *extra, overrides=SMALL, wait=True, env=None):
    cmd = [sys.executable, "-m", "zsl_lib", "train", "--config", str(CONFIG), "--run-dir", str(run_dir), *extra]
    for item in overrides:
        cmd += ["--set", item]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    if wait:
        out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-3000:]
    return proc


def final_state(run_dir):
    return checkpoint.load(Path(run_dir) / "last.pt")


def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path):
    cli(tmp_path / "whole")
    killed = cli(tmp_path / "killed", wait=False)
    last = tmp_path / "killed" / "last.pt"
    deadline = time.time() + 600
    while time.time() < deadline:                                  # wait for the checkpoint of step 8
        if last.is_file() and checkpoint.load(last)["step"] >= 8:
            break
        time.sleep(0.2)
    killed.send_signal(signal.SIGKILL)
    killed.communicate()
    interrupted_at = checkpoint.load(last)["step"]
    assert killed.returncode == -signal.SIGKILL and 8 <= interrupted_at < 75   # mid-epoch, before the end
    cli(tmp_path / "killed", "--resume")

    whole, resumed = final_state(tmp_path / "whole"), final_state(tmp_path / "killed")
    assert resumed["step"] == whole["step"] == 80
    for name, value in whole["model"].items():
        assert torch.equal(value, resumed["model"][name]), name
    assert resumed["history"] == whole["history"]
    for name in ("metrics.jsonl",):
        assert (tmp_path / "killed" / name).read_text() == (tmp_path / "whole" / name).read_text()
    scores = [json.loads((tmp_path / d / "result.json").read_text())["metrics"] for d in ("whole", "killed")]
    assert scores[0] == scores[1]


def test_two_processes_with_torchrun_match_one_process(tmp_path):
    # Each process computes the losses on its half of the batch and DDP averages the
    # gradients: for losses that are means over images, the full batch's gradient. VSPCN's
    # L_ED is a ratio of batch means and is not; it is switched off here (mu_ED = 0) so the
    # comparison is exact up to float summation order. Stated tolerance: 1e-5 on every
    # weight, 1e-4 (relative) on every logged loss. With L_ED the two differ by about 1.5 %
    # of the weight change (test_gradient_accumulation below measures it).
    overrides = ["data.size=smoke", "protocol=final", "train.steps=6", "train.batch_size=16", "train.log_every=1",
                 "model_options={losses: {mu_ed: 0.0}}"]
    cli(tmp_path / "one", overrides=overrides)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "zsl_lib", "train", "--config", str(CONFIG), "--run-dir", str(tmp_path / "two")]
    for item in overrides:
        cmd += ["--set", item]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    one, two = final_state(tmp_path / "one"), final_state(tmp_path / "two")
    for name, value in one["model"].items():
        torch.testing.assert_close(two["model"][name], value, atol=1e-5, rtol=0, msg=name)
    for a, b in zip(one["history"], two["history"], strict=True):   # logged terms: the mean over processes;
        differ = {k for k in a if abs(a[k] - b[k]) > 1e-4 * abs(a[k]) + 1e-5}   # L_ED of two halves is not
        assert differ <= {"ed"}, (a, b)                                          # the L_ED of the whole
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["config.json", "last.pt", "metrics.jsonl",
                                                                    "result.json"]


def train_states(world, losses, accumulations):
    """Trainable weights after 3 steps of 16 images, for each number of accumulation steps."""
    tv = world.splits["trainval"]
    states = []
    for accum in accumulations:
        model = build(world, preset("paper_default", losses=losses), world.seen_classes, seed=0)
        train(model, world.images[tv], world.labels[tv],
              TrainConfig(steps=3, batch_size=16, device="cpu", grad_accum=accum), log=lambda *_: None,
              normalize=world.normalize)
        states.append(checkpoint.trainable_state(model))
    return states


def test_gradient_accumulation_matches_the_whole_batch(smoke_world):
    whole, split = train_states(smoke_world, LossWeights(mu_ed=0.0), (1, 4))
    for name in whole:                                         # exact but for float summation order
        torch.testing.assert_close(split[name], whole[name], atol=1e-5, rtol=0, msg=name)
    # With L_ED (a ratio of batch means) four micro-batches are a different objective: close, not equal.
    init = checkpoint.trainable_state(build(smoke_world, preset("paper_default"), smoke_world.seen_classes, seed=0))
    whole, split = train_states(smoke_world, LossWeights(), (1, 4))
    moved = sum(((whole[k] - init[k]) ** 2).sum() for k in init).sqrt()
    differ = sum(((whole[k] - split[k]) ** 2).sum() for k in init).sqrt()
    assert 1e-4 < differ / moved < 0.05


def test_reading_ahead_in_threads_changes_nothing_and_resumes_exactly(tmp_path, smoke_world):
    tv = smoke_world.splits["trainval"][:96]                   # 6 steps of 16 an epoch: 14 steps cross two
    cfg = TrainConfig(steps=14, batch_size=16, device="cpu", checkpoint_every=3)

    def run(workers, run_dir, resume=False, stop_at=None):
        calls = []

        def interrupt(x):                                       # an identity transform that can stop the run
            calls.append(1)
            if len(calls) == stop_at:
                raise KeyboardInterrupt
            return x
        model = build(smoke_world, preset("paper_default"), smoke_world.seen_classes, seed=0)
        train(model, smoke_world.images[tv], smoke_world.labels[tv], replace(cfg, workers=workers),
              log=lambda *_: None, run_dir=run_dir, resume=resume, transform=interrupt, normalize=smoke_world.normalize)
        return checkpoint.trainable_state(model)

    plain = run(0, tmp_path / "plain")
    with pytest.raises(KeyboardInterrupt):
        run(2, tmp_path / "ahead", stop_at=8)                   # batches 8 and 9 already in flight
    assert checkpoint.load(tmp_path / "ahead" / "last.pt")["step"] == 6
    ahead = run(2, tmp_path / "ahead", resume=True)
    for name in plain:
        assert torch.equal(plain[name], ahead[name]), name
    assert (tmp_path / "ahead" / "metrics.jsonl").read_text() == (tmp_path / "plain" / "metrics.jsonl").read_text()


def test_sampler_state_round_trip():
    a = EpochSampler(10, 3, seed=1)
    for _ in range(4):
        a.next_batch()
    b = EpochSampler(10, 3, seed=99)
    b.load_state_dict(a.state_dict())
    for _ in range(7):
        x, y = a.next_batch(), b.next_batch()
        assert np.array_equal(x[0], y[0]) and x[1] == y[1]
    with pytest.raises(ValueError, match="larger than the 10 training images"):
        EpochSampler(10, 11, seed=0)


def test_damaged_foreign_and_mismatched_checkpoints(tmp_path):
    path = tmp_path / "last.pt"
    checkpoint.save(path, {"config": {"lr": 0.1}, "step": 3})
    assert checkpoint.load(path, config={"lr": 0.1})["step"] == 3
    with pytest.raises(ValueError, match=r"different configuration \(keys \['lr'\]"):
        checkpoint.load(path, config={"lr": 0.2})
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ValueError, match="last.pt is damaged and cannot be read"):
        checkpoint.load(path)
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="is not a zsl_lib training checkpoint"):
        checkpoint.load(path)
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        checkpoint.load(tmp_path / "nothing.pt")


def test_resume_refuses_a_changed_configuration(tmp_path, smoke_world):
    tv = smoke_world.splits["trainval"][:64]
    model = build(smoke_world, preset("paper_default"), smoke_world.seen_classes, seed=0)
    train(model, smoke_world.images[tv], smoke_world.labels[tv], TrainConfig(steps=2, batch_size=16, device="cpu"),
          log=lambda *_: None, run_dir=tmp_path, normalize=smoke_world.normalize)
    with pytest.raises(ValueError, match=r"different configuration \(keys \['lr'\]"):
        train(model, smoke_world.images[tv], smoke_world.labels[tv],
              TrainConfig(steps=2, batch_size=16, lr=0.1, device="cpu"), run_dir=tmp_path, resume=True,
              normalize=smoke_world.normalize)


def test_config_errors_name_the_key_and_the_allowed_values(tmp_path):
    assert runconfig.load(CONFIG).train.steps == 190           # the validation run of the book recipe (300 final steps)
    assert runconfig.load(CONFIG, ["train.lr=0.01", "model_options={adapter: false}"]).train.lr == 0.01
    for shipped in sorted((ROOT / "configs").glob("*.yaml")):
        assert shipped.name.startswith(runconfig.load(shipped).model + "_")
    cases = {
        "train.lrate=0.1": r"unknown key\(s\) \['lrate'\] in .*section 'train'; allowed: \[.*'lr'",
        "preset=paper": r"preset = 'paper' is not allowed; choose one of \['code_exact', 'paper_default'\]",
        "protocol=test": r"protocol = 'test' is not allowed",
        "data.size=full": r"data.size = 'full' is not allowed; choose one of \['book', 'smoke'\]",
        "train.precision=fp8": r"section 'train': TrainConfig: precision = 'fp8' is not one of \('auto', ",
        "model_options={depth: 3}": r"unknown key\(s\) \['depth'\] in model_options",
        "train.steps=0": r"section 'train': TrainConfig: steps = 0 must be a positive integer",
        "data.dataset=CUB": r"data.root is empty: dataset CUB needs",
        "steps": r"write key=value",
    }
    for item, message in cases.items():
        with pytest.raises(ValueError, match=message):
            runconfig.load(CONFIG, [item])
    with pytest.raises(FileNotFoundError, match="the repository ships configs/"):
        runconfig.load(tmp_path / "missing.yaml")


def test_the_cosine_schedule_is_the_cosine_over_all_steps_times_the_warm_up_ramp():
    cfg = TrainConfig(steps=100, warmup_steps=10, schedule="cosine")
    # step: ramp (step + 1) / 10 until 1, times 0.5 (1 + cos(pi step / 100)), computed by hand
    by_hand = {0: 0.1 * 1.0,                        # cos(0) = 1
               4: 0.5 * 0.5 * (1 + 0.9921147013),   # cos(0.04 pi)
               9: 1.0 * 0.5 * (1 + 0.9602936857),   # cos(0.09 pi): the ramp's last step
               10: 0.5 * (1 + 0.9510565163),        # cos(0.1 pi): the cosine was not delayed (not 1.0)
               50: 0.5 * (1 + 0.0),                 # cos(pi / 2)
               99: 0.5 * (1 - 0.9995065604),        # cos(0.99 pi)
               100: 0.0, 130: 0.0}                  # cos(pi) = -1, and held there
    assert {s: lr_factor(cfg, s) for s in by_hand} == pytest.approx(by_hand, abs=1e-10)


@pytest.mark.parametrize("change, message", [
    ({"schedule": "linear"}, r"schedule = 'linear' is not one of \('cosine', 'constant', 'multistep'\)$"),
    ({"optimizer": "adamw"}, r"optimizer = 'adamw' is not one of \('adam', 'sgd'\)$"),
    ({"sampler": "classes"}, r"sampler = 'classes' is not one of \('epoch', 'episodes'\)$"),
    ({"precision": "fp8"}, r"precision = 'fp8' is not one of \('auto', 'fp32', 'bf16', 'fp16'\)$"),
    ({"steps": 0}, r"steps = 0 must be a positive integer$"),
    ({"batch_size": -4}, r"batch_size = -4 must be a positive integer$"),
    ({"grad_accum": 0}, r"grad_accum = 0 must be a positive integer$"),
    ({"log_every": 0}, r"log_every = 0 must be a positive integer$"),
    ({"batch_size": 30, "grad_accum": 4}, r"batch_size = 30 must be a multiple of grad_accum = 4"),
    ({"sampler": "episodes", "batch_size": 8}, r"batch_size = 8 must equal ways x shots = 16 x 2 with sampler"),
])
def test_train_config_refuses_a_bad_value_in_one_line(change, message):
    with pytest.raises(ValueError, match="^TrainConfig: " + message) as refused:
        TrainConfig(**change)
    assert "\n" not in str(refused.value)
    with pytest.raises(ValueError, match="^config, section 'train': TrainConfig: " + message):   # a YAML train section
        runconfig.from_dict({"train": change})


def test_cli_evaluate_reports_the_checkpoint(tmp_path):
    cli(tmp_path / "run", overrides=["data.size=smoke", "protocol=final", "train.steps=3", "train.batch_size=16",
                                     "gamma=0.5"])
    done = subprocess.run([sys.executable, "-m", "zsl_lib", "evaluate", "--checkpoint", str(tmp_path / "run" / "last.pt")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    stored = json.loads((tmp_path / "run" / "result.json").read_text())["metrics"]
    assert report["step"] == 3 and report["gamma"] == 0.5
    assert report["H"] == stored["H"] and report["T1"] == stored["T1"]


def test_metrics_go_to_tensorboard_when_it_is_installed(tmp_path, smoke_world, monkeypatch):
    import types
    scalars = []

    class Writer:                                               # stands in for tensorboard's SummaryWriter
        def __init__(self, logdir):
            assert logdir == str(tmp_path / "tensorboard")

        def add_scalar(self, tag, value, step):
            scalars.append((tag, value, step))

        def close(self):
            scalars.append("closed")
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=Writer))
    tv = smoke_world.splits["trainval"][:32]
    model = build(smoke_world, preset("paper_default"), smoke_world.seen_classes, seed=0)
    history = train(model, smoke_world.images[tv], smoke_world.labels[tv],
                    TrainConfig(steps=2, batch_size=16, device="cpu", log_every=1), log=lambda *_: None,
                    run_dir=tmp_path, on_epoch_end=lambda m, e: {"H": 1.0}, normalize=smoke_world.normalize)
    assert ("train/total", history[1]["total"], 1) in scalars and ("val/H", 1.0, 1) in scalars
    assert scalars[-1] == "closed"


def test_compiled_training_matches_eager(smoke_world):
    """compile=True (torch.compile, inductor; about 100 s of compiling on this CPU) trains to the
    same losses and, up to float reassociation, the same weights as eager mode."""
    tv = smoke_world.splits["trainval"]
    runs = []
    for compiled in (False, True):
        model = build(smoke_world, preset("paper_default"), smoke_world.seen_classes, seed=0)
        history = train(model, smoke_world.images[tv], smoke_world.labels[tv],
                        TrainConfig(steps=3, batch_size=16, device="cpu", compile=compiled), log=lambda *_: None,
                        normalize=smoke_world.normalize)
        runs.append((checkpoint.trainable_state(model), history))
    (eager, eager_history), (compiled, compiled_history) = runs
    assert [h["total"] for h in eager_history] == pytest.approx([h["total"] for h in compiled_history], abs=1e-4)
    for name in eager:
        torch.testing.assert_close(compiled[name], eager[name], atol=1e-4, rtol=0, msg=name)
