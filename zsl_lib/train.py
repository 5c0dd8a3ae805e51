"""One training loop, readable top to bottom, for any model with `training_losses(x, labels)`.

The same loop runs on a laptop CPU, on one GPU and on several processes under `torchrun`:

- the data are uint8 images (N, H, W, 3) in memory or in a memory-mapped cache
  (`zsl_lib.imagecache`), turned into normalised tensors batch by batch on the device;
- every option is a field of `TrainConfig`;
- with a `run_dir` it writes `metrics.jsonl`, checkpoints (`last.pt`, atomically, every
  `checkpoint_every` steps and at each epoch end) and the best model by validation H
  (`best.pt`) when an `on_epoch_end` evaluation is given; `resume=True` continues from
  `last.pt` exactly: same batches, same random numbers, same weights.

Labels are given as class ids and trained as columns of the model's seen classes
(`model.seen_classes`). Evaluation itself lives in `zsl_lib.evaluate`.
"""
from __future__ import annotations

import json
import math
import random
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from . import checkpoint, metrics
from .backbones import to_input
from .distributed import setup
from .runtime import (PRECISIONS, autocast_dtype, configure_cuda, resolve_device, seed_everything, warmup,
                      warmup_cosine)

SCHEDULES = ("cosine", "constant", "multistep")
OPTIMIZERS = ("adam", "sgd")
SAMPLERS = ("epoch", "episodes")


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 300
    batch_size: int = 32           # the global batch: split over processes, then over accumulation steps
    lr: float = 1e-3
    weight_decay: float = 1e-4     # L2-style, added to the gradient (as both papers' code)
    optimizer: str = "adam"        # "adam" (VSPCN) or "sgd" with `momentum` (Mg-MRN)
    momentum: float = 0.9
    warmup_steps: int = 10         # linear warm-up; 0: none
    schedule: str = "cosine"       # after warm-up: "cosine" decay to 0, "constant" (VSPCN: its code's step
                                   #   decay never fires within 20 epochs), or
    milestones: tuple = ()         #   "multistep": lr x `decay` at each of these steps (Mg-MRN's StepLR)
    decay: float = 0.1
    grad_clip: float = 1.0         # max gradient norm; 0: no clipping
    sampler: str = "epoch"         # "epoch": shuffled passes over the images; "episodes": `ways` classes x
    ways: int = 16                 #   `shots` images a batch (Mg-MRN's code; batch_size = ways * shots)
    shots: int = 2
    seed: int = 0
    device: str = "auto"
    log_every: int = 25
    grad_accum: int = 1            # micro-batches per optimiser step
    precision: str = "auto"        # "auto": bf16 autocast on CUDA, fp32 on the CPU (bf16 is 10-50x slower there)
    compile: bool = False          # torch.compile the loss computation
    deterministic: bool = False    # torch.use_deterministic_algorithms (slower on CUDA)
    checkpoint_every: int = 0      # steps between checkpoints in run_dir; 0: at epoch ends only
    progress: bool = False         # a tqdm bar (notebook-aware) instead of log lines
    workers: int = 0               # threads reading (e.g. decoding JPEGs) batches ahead of the step; 0: in the loop

    def __post_init__(self):
        """Refuse a value outside its allowed set with one line naming the field, the value and what
        is allowed. Checks that need the data or the processes are made where those are known."""
        object.__setattr__(self, "milestones", tuple(self.milestones))   # a YAML list becomes the default's tuple
        for key, allowed in (("schedule", SCHEDULES), ("optimizer", OPTIMIZERS), ("sampler", SAMPLERS),
                             ("precision", PRECISIONS)):
            if getattr(self, key) not in allowed:
                raise ValueError(f"TrainConfig: {key} = {getattr(self, key)!r} is not one of {allowed}")
        for key in ("steps", "batch_size", "grad_accum", "log_every"):
            if getattr(self, key) < 1:
                raise ValueError(f"TrainConfig: {key} = {getattr(self, key)!r} must be a positive integer")
        if self.batch_size % self.grad_accum:
            raise ValueError(f"TrainConfig: batch_size = {self.batch_size} must be a multiple of "
                             f"grad_accum = {self.grad_accum} (equal micro-batches)")
        if self.sampler == "episodes" and self.batch_size != self.ways * self.shots:
            raise ValueError(f"TrainConfig: batch_size = {self.batch_size} must equal ways x shots = "
                             f"{self.ways} x {self.shots} with sampler 'episodes'; change one of them")


# Fields a resumed run may change: they do not change what is computed.
RESUME_MAY_CHANGE = ("device", "log_every", "checkpoint_every", "progress", "workers")


class LossModule(torch.nn.Module):
    """`model.training_losses` as a forward pass, so DDP can synchronise its gradients."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model.training_losses(x, labels)


class EpochSampler:
    """Shuffled batches without replacement; a new permutation when too few images remain.

    Its whole state (generator, permutation, position) goes into checkpoints.
    """

    def __init__(self, n: int, batch_size: int, seed: int):
        if batch_size > n:
            raise ValueError(f"batch_size {batch_size} is larger than the {n} training images")
        self.n, self.batch_size = n, batch_size
        self.rng = np.random.default_rng(seed)
        self.order, self.cursor, self.epoch = self.rng.permutation(n), 0, 0

    def next_batch(self) -> tuple[np.ndarray, bool]:
        """The next batch (sorted indices) and whether it completes an epoch."""
        batch = np.sort(self.order[self.cursor:self.cursor + self.batch_size])
        self.cursor += self.batch_size
        epoch_done = self.cursor + self.batch_size > self.n
        if epoch_done:
            self.order, self.cursor, self.epoch = self.rng.permutation(self.n), 0, self.epoch + 1
        return batch, epoch_done

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "order": torch.from_numpy(self.order.copy()),
                "cursor": self.cursor, "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.order, self.cursor, self.epoch = state["order"].numpy(), state["cursor"], state["epoch"]


class EpisodeSampler:
    """Batches of `ways` classes x `shots` images, the Mg-MRN code's sampler.

    Each batch draws its classes without replacement, then each class's images without
    replacement; batches are independent. An epoch (validation and a checkpoint at its end)
    is `batches_per_epoch` batches: by default `len(labels) // (ways * shots)`, as often as
    with `EpochSampler`; Mg-MRN's code counts 300 (117 on CUB would mean 77 validations a run).
    """

    def __init__(self, labels: np.ndarray, ways: int, shots: int, seed: int, batches_per_epoch: int | None = None):
        classes, inverse = np.unique(labels, return_inverse=True)
        self.members = [np.flatnonzero(inverse == k) for k in range(len(classes))]
        if ways > len(classes):
            raise ValueError(f"ways = {ways} but the training images hold only {len(classes)} classes; lower ways")
        fewest = min(len(m) for m in self.members)
        if shots > fewest:
            raise ValueError(f"shots = {shots} but a training class has only {fewest} images; lower shots")
        self.ways, self.shots = ways, shots
        self.batches_per_epoch = batches_per_epoch or max(1, len(labels) // (ways * shots))
        self.rng = np.random.default_rng(seed)
        self.cursor, self.epoch = 0, 0

    def next_batch(self) -> tuple[np.ndarray, bool]:
        """The next batch (sorted indices) and whether it completes an epoch."""
        classes = self.rng.choice(len(self.members), self.ways, replace=False)
        batch = np.concatenate([self.rng.choice(self.members[k], self.shots, replace=False) for k in classes])
        self.cursor += 1
        epoch_done = self.cursor == self.batches_per_epoch
        if epoch_done:
            self.cursor, self.epoch = 0, self.epoch + 1
        return np.sort(batch), epoch_done

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "cursor": self.cursor, "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.cursor, self.epoch = state["cursor"], state["epoch"]


def make_sampler(cfg: "TrainConfig", labels: np.ndarray,
                 steps_per_epoch: int | None = None) -> EpochSampler | EpisodeSampler:
    if steps_per_epoch is not None and cfg.sampler != "episodes":
        raise ValueError("steps_per_epoch is for the 'episodes' sampler; an epoch of the 'epoch' sampler is one pass")
    if cfg.sampler == "epoch":
        return EpochSampler(len(labels), cfg.batch_size, cfg.seed)
    return EpisodeSampler(labels, cfg.ways, cfg.shots, cfg.seed, steps_per_epoch)


def lr_factor(cfg: "TrainConfig", step: int) -> float:
    """The learning rate of `step` (from 0) as a fraction of `cfg.lr`."""
    if cfg.schedule == "cosine":
        return warmup_cosine(step, cfg.warmup_steps, cfg.steps)
    if cfg.schedule == "multistep":
        return warmup(step, cfg.warmup_steps) * cfg.decay ** sum(step >= m for m in cfg.milestones)
    return warmup(step, cfg.warmup_steps)


def make_optimizer(cfg: "TrainConfig", params) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


class BatchReader:
    """The sampler's batches as uint8 pixels, read `workers` batches ahead in threads.

    Decoding JPEGs and reading a memory map release the GIL, so threads overlap reading
    with the step. Each process reads only its share of the global batch (`part` = (rank,
    world)). On CUDA the pixels are pinned for an asynchronous copy. `state_dict()` is the
    sampler's state as of the next batch the loop will receive, so a checkpoint taken
    while batches are in flight still resumes exactly.
    """

    def __init__(self, images, sampler: EpochSampler | EpisodeSampler, workers: int = 0, pin: bool = False, part=(0, 1)):
        self.images, self.sampler, self.pin, self.part = images, sampler, pin, part
        self.pool = ThreadPoolExecutor(workers) if workers else None
        self.depth = workers + 1 if workers else 1        # batches requested: the current one and `workers` ahead
        self.pending: deque = deque()

    def _read(self, indices: np.ndarray) -> torch.Tensor:
        pixels = torch.from_numpy(np.asarray(self.images[indices]))          # (b, H, W, 3) uint8
        return pixels.pin_memory() if self.pin else pixels

    def _request(self) -> None:
        state = self.sampler.state_dict()
        batch, epoch_done = self.sampler.next_batch()
        mine = batch[self.part[0]::self.part[1]]
        pixels = self.pool.submit(self._read, mine) if self.pool else None
        self.pending.append((state, mine, epoch_done, pixels))

    def next(self) -> tuple[np.ndarray, bool, torch.Tensor]:
        """(this process's indices, whether the batch ends an epoch, their pixels)."""
        while len(self.pending) < self.depth:
            self._request()
        _, mine, epoch_done, pixels = self.pending.popleft()
        return mine, epoch_done, pixels.result() if self.pool else self._read(mine)

    def state_dict(self) -> dict:
        return self.pending[0][0] if self.pending else self.sampler.state_dict()

    def close(self) -> None:
        if self.pool:
            self.pool.shutdown(cancel_futures=True)


def tensorboard_writer(run_dir: Path | None):
    """A TensorBoard writer into run_dir/tensorboard when the tensorboard package is installed."""
    if run_dir is None:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))


def rng_state() -> dict:
    """Every global random state a step may draw from (augmentations, dropout), as tensors and plain values."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(), "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss),
            "python": random.getstate(), "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    random.setstate(state["python"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])


def check_finite(terms: dict[str, float], step: int) -> None:
    """Stop with the step and the loss term(s) that are NaN or infinite (the total only if no term is).

    The loop calls it on the values it fetched after the optimiser step, so checking costs no
    host-device synchronisation of its own; the run stops before that step's checkpoint.
    """
    if all(math.isfinite(v) for v in terms.values()):
        return
    bad = [k for k, v in terms.items() if k != "total" and not math.isfinite(v)] or ["total"]
    raise FloatingPointError(f"step {step}: loss term(s) {bad} are not finite "
                             f"({ {k: terms[k] for k in bad} }); lower the learning rate")


def fetch_terms(parts: list[tuple[float, dict[str, torch.Tensor]]],
                reduce: Callable[[torch.Tensor], torch.Tensor] | None = None) -> dict[str, float]:
    """The weighted sum of each loss term over a step's micro-batches, (weight, terms) each, as
    Python floats, read from the device in one transfer: the step's one host-device sync.
    `reduce` (`Processes.mean` under torchrun) acts on the stacked values before the transfer."""
    stacked = torch.stack([v.detach().float() for _, terms in parts for v in terms.values()])
    values = iter((stacked if reduce is None else reduce(stacked)).tolist())
    summed: dict[str, float] = {}
    for weight, terms in parts:
        for k in terms:
            summed[k] = summed.get(k, 0.0) + next(values) * weight
    return summed


def train(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray, cfg: TrainConfig, log=print,
          run_dir: str | Path | None = None, resume: bool = False,
          on_epoch_end: Callable[[torch.nn.Module, int], dict] | None = None,
          transform: Callable[[torch.Tensor], torch.Tensor] | None = None, normalize=to_input,
          steps_per_epoch: int | None = None) -> list[dict]:
    """Train on uint8 images (N, H, W, 3) with class ids `labels` (N,); returns the loss history.

    Adam or SGD (L2-style weight decay, as the papers' code) with linear warm-up and a cosine,
    constant or step schedule, gradient clipping, fp32 on the CPU and bf16 autocast on CUDA.
    A model with an `own_update(x, labels, optimizer, grad_clip, autocast)` method (Mg-MRN's
    released per-stage steps) makes its backward passes and optimiser steps itself. The loss terms
    are read from the device once per step, after the update (one host-device sync); a non-finite
    term stops the run with the step and the term that went wrong. On CUDA, TF32 matmuls, cuDNN's
    autotuner and channels-last inputs for CNNs are on (`runtime.configure_cuda`).
    `on_epoch_end(model, epoch)` returns validation metrics (with "H" the best model is kept);
    `normalize` turns uint8 pixels into the backbone's input (`dataset.normalize`); `transform`
    augments that batch on the device; `steps_per_epoch` sets the length of an epoch of the
    "episodes" sampler.
    """
    # --- set-up: processes, device, seeds ---------------------------------------------
    device = resolve_device(cfg.device)
    procs = setup(device.type)
    if device.type == "cuda" and procs.world > 1:
        device = torch.device("cuda", procs.local_rank)
        torch.cuda.set_device(device)
    if cfg.batch_size % (procs.world * cfg.grad_accum):
        raise ValueError(f"batch_size {cfg.batch_size} must split evenly over {procs.world} process(es) x "
                         f"grad_accum {cfg.grad_accum}; change batch_size or grad_accum")
    seed_everything(cfg.seed)
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True)
    dtype = autocast_dtype(cfg.precision, device)
    memory_format = configure_cuda(device, model, cfg.deterministic)

    def autocast():
        return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)

    model.to(device).train()
    seen = model.seen_classes.cpu().numpy()
    try:
        targets, _ = metrics.columns(seen, labels, seen)
    except ValueError as err:
        raise ValueError(f"training labels include classes that are not the model's seen classes: {err}") from err

    # --- optimiser, schedule, data order ----------------------------------------------
    params = [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(cfg, params)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(cfg, s))
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    sampler = make_sampler(cfg, labels, steps_per_epoch)
    own_update = getattr(model, "own_update", None)   # a model that steps the optimiser itself (Mg-MRN's code)
    if own_update is not None and (procs.world > 1 or cfg.grad_accum > 1 or scaler.is_enabled() or cfg.compile):
        raise ValueError(f"{type(model).__name__} makes its own optimiser steps ({own_update.__name__}): "
                         "train it in one process with grad_accum 1, without fp16 and without compile")
    history, records, best, first_step, epoch = [], [], None, 0, 0

    # --- resume ------------------------------------------------------------------------
    run_dir = Path(run_dir) if run_dir is not None else None
    identity = {k: v for k, v in asdict(cfg).items() if k not in RESUME_MAY_CHANGE} | {"n_images": len(images)}
    if resume:
        if run_dir is None:
            raise ValueError("resume=True needs the run_dir of the run to continue")
        state = checkpoint.load(run_dir / "last.pt", config=identity)
        checkpoint.load_trainable_state(model, state["model"], str(run_dir / "last.pt"))
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        sampler.load_state_dict(state["sampler"])
        set_rng_state(state["rng"])
        history, records, best, first_step = state["history"], state["records"], state["best"], state["step"]
        epoch = sampler.epoch
        log(f"resumed {run_dir} at step {first_step}/{cfg.steps} (epoch {epoch})")
    on_gpu = device.type == "cuda"
    reader = BatchReader(images, sampler, cfg.workers, pin=on_gpu, part=(procs.rank, procs.world))

    def save_checkpoint(step: int) -> None:
        if run_dir is not None and procs.main:
            checkpoint.save(run_dir / "last.pt", {
                "config": identity, "step": step, "model": checkpoint.trainable_state(model),
                "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "scaler": scaler.state_dict(),
                "sampler": reader.state_dict(), "rng": rng_state(), "history": history, "records": records,
                "best": best})

    def write_record(record: dict) -> None:
        records.append(record)
        if run_dir is not None and procs.main:
            with open(run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            if board is not None:
                group = "val" if "epoch" in record else "train"
                for key, value in record.items():
                    if key not in ("step", "epoch") and isinstance(value, (int, float)):
                        board.add_scalar(f"{group}/{key}", value, record["step"])

    board = tensorboard_writer(run_dir) if procs.main else None
    if run_dir is not None and procs.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        # The log holds exactly what the checkpoint knows: lines of an interrupted tail are dropped.
        (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))

    loss_fn = LossModule(model)
    if procs.world > 1:
        loss_fn = torch.nn.parallel.DistributedDataParallel(
            loss_fn, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        loss_fn = torch.compile(loss_fn)

    # --- the loop -------------------------------------------------------------------------
    bar = tqdm(total=cfg.steps, initial=first_step, disable=not (cfg.progress and procs.main), desc="train")
    start = time.time()
    for step in range(first_step, cfg.steps):
        mine, epoch_done, pixels = reader.next()                        # this process's share of the batch
        epoch += epoch_done
        micro_batches = np.array_split(np.arange(len(mine)), cfg.grad_accum)
        parts = []                                                      # (weight, loss terms) per micro-batch
        for i, micro in enumerate(micro_batches):
            rows = slice(micro[0], micro[-1] + 1)                       # a view: pinned pixels stay pinned
            x = normalize(pixels[rows].to(device, non_blocking=True))   # (b, 3, H, W)
            if transform is not None:
                x = transform(x)
            y = torch.from_numpy(targets[mine[rows]])
            if on_gpu:                                                  # a copy from pageable memory would sync
                x, y = x.contiguous(memory_format=memory_format), y.pin_memory()
            y = y.to(device, non_blocking=True)
            weight = len(micro) / len(mine)
            last = i == len(micro_batches) - 1
            sync = nullcontext() if last or procs.world == 1 else loss_fn.no_sync()
            with sync:
                if own_update is None:
                    with autocast():
                        terms = loss_fn(x, y)
                    scaler.scale(terms["total"] * weight).backward()     # backward outside autocast
                else:              # its own backward passes and optimiser steps (one micro-batch)
                    terms = own_update(x, y, opt, cfg.grad_clip, autocast)
            parts.append((weight, terms))
        if own_update is None:
            scaler.unscale_(opt)
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            scaler.step(opt)
            scaler.update()
            opt.zero_grad(set_to_none=True)
        sched.step()
        terms_sum = fetch_terms(parts, procs.mean)                      # the step's one host-device sync
        check_finite(terms_sum, step)                                   # the mean over processes: all stop alike
        history.append({k: round(v, 5) for k, v in terms_sum.items()})
        bar.update(1)

        if step % cfg.log_every == 0 or step == cfg.steps - 1:
            write_record({"step": step, **history[-1], "lr": sched.get_last_lr()[0]})
            if not cfg.progress and procs.main:
                log(f"step {step}/{cfg.steps} loss {history[-1]['total']:.4f} ({time.time() - start:.0f} s)")
        if epoch_done and on_epoch_end is not None:
            if procs.main:
                model.eval()
                scores = on_epoch_end(model, epoch)
                model.train()
                write_record({"epoch": epoch, "step": step, **scores})
                if "H" in scores and (best is None or scores["H"] > best["H"]):
                    best = {"epoch": epoch, "step": step, **scores}
                    if run_dir is not None:
                        checkpoint.save(run_dir / "best.pt", {"config": identity, **best,
                                                              "model": checkpoint.trainable_state(model)})
            procs.barrier()
        if epoch_done or (cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0):
            save_checkpoint(step + 1)
    bar.close()
    reader.close()
    if board is not None:
        board.close()
    save_checkpoint(cfg.steps)
    model.eval()
    return history
