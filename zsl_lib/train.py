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
from functools import partial
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import torch
from tqdm.auto import tqdm

from . import checkpoint, metrics
from .distributed import Processes, setup
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
    warmup_steps: int = 10         # a linear ramp over these first steps, multiplying the schedule; 0: none
    schedule: str = "cosine"       # "cosine": from 1 at step 0 to 0 at `steps` (the ramp multiplies its first
                                   #   values, it does not delay it), "constant" (VSPCN: its code's step decay
                                   #   never fires within 20 epochs), or
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
    """The learning rate of `step` (from 0) as a fraction of `cfg.lr`: the linear warm-up ramp
    (step + 1) / warmup_steps during the first `warmup_steps` steps (then 1) times the schedule,
    "cosine" 0.5 (1 + cos(pi step / steps)) over all `steps` from step 0, "multistep" `decay` to
    the number of milestones reached, or "constant" 1. The cosine is not shifted to start after the
    warm-up: when the ramp ends, the factor continues on the cosine where it stands."""
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


def join_processes(cfg: TrainConfig) -> tuple[torch.device, Processes]:
    """The device and the process group (the processes `torchrun` started, or this one alone), each
    process on its own GPU. Refuses a global batch that does not split evenly over the processes'
    micro-batches."""
    device = resolve_device(cfg.device)
    procs = setup(device.type)
    if device.type == "cuda" and procs.world > 1:
        device = torch.device("cuda", procs.local_rank)
        torch.cuda.set_device(device)
    if cfg.batch_size % (procs.world * cfg.grad_accum):
        raise ValueError(f"batch_size {cfg.batch_size} must split evenly over {procs.world} process(es) x "
                         f"grad_accum {cfg.grad_accum}; change batch_size or grad_accum")
    return device, procs


def seen_columns(model: torch.nn.Module, labels: np.ndarray) -> np.ndarray:
    """The training targets: the column of each class id of `labels` (N,) among `model.seen_classes`."""
    seen = model.seen_classes.cpu().numpy()
    try:
        targets, _ = metrics.columns(seen, labels, seen)
    except ValueError as err:
        raise ValueError(f"training labels include classes that are not the model's seen classes: {err}") from err
    return targets


# A step's update: takes the micro-batches (weight, x, y, is_last), returns (weight, loss terms) per micro-batch.
MicroBatch = tuple[float, torch.Tensor, torch.Tensor, bool]
Update = Callable[[Iterable[MicroBatch]], list[tuple[float, dict[str, torch.Tensor]]]]


def wrapped_losses(model: torch.nn.Module, cfg: TrainConfig, procs: Processes, device: torch.device):
    """`model.training_losses` as a module: under DDP with several processes, compiled if `cfg.compile`."""
    loss_fn = LossModule(model)
    if procs.world > 1:
        loss_fn = torch.nn.parallel.DistributedDataParallel(
            loss_fn, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        loss_fn = torch.compile(loss_fn)
    return loss_fn


def default_update(loss_fn, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler, grad_clip: float,
                   autocast: Callable, world: int) -> Update:
    """The update of a model without its own. Each micro-batch (weight, x, y, is_last): the forward
    pass under autocast, then outside it the backward pass of `weight` x its loss (its share of the
    batch mean; scaled under fp16); gradients accumulate, and DDP averages them over the processes
    at the last micro-batch only. Then unscale, clip the gradient norm to `grad_clip` (0: no
    clipping), step and zero the gradients. Returns (weight, loss terms) per micro-batch, the terms
    still on the device."""
    params = [p for group in opt.param_groups for p in group["params"]]

    def update(micro_batches: Iterable[MicroBatch]) -> list[tuple[float, dict[str, torch.Tensor]]]:
        parts = []
        for weight, x, y, last in micro_batches:
            with nullcontext() if last or world == 1 else loss_fn.no_sync():
                with autocast():
                    terms = loss_fn(x, y)
                scaler.scale(terms["total"] * weight).backward()
            parts.append((weight, terms))
        scaler.unscale_(opt)
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
        return parts
    return update


def choose_update(model: torch.nn.Module, cfg: TrainConfig, procs: Processes, device: torch.device,
                  opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler, autocast: Callable) -> Update:
    """The step's update, chosen once for the run: the model's own if it has a method
    `own_update(x, labels, optimizer, grad_clip, autocast)` (it runs its forward passes inside
    `autocast()`, makes its backward passes and optimiser steps itself and returns its loss terms,
    as Mg-MRN's released per-stage steps do), else `default_update`. A model's own update takes whole
    batches: it trains in one process, with grad_accum 1, without fp16 and without compile."""
    own_update = getattr(model, "own_update", None)
    if own_update is None:
        loss_fn = wrapped_losses(model, cfg, procs, device)
        return default_update(loss_fn, opt, scaler, cfg.grad_clip, autocast, procs.world)
    if procs.world > 1 or cfg.grad_accum > 1 or scaler.is_enabled() or cfg.compile:
        raise ValueError(f"{type(model).__name__} makes its own optimiser steps ({own_update.__name__}): "
                         "train it in one process with grad_accum 1, without fp16 and without compile")

    def update(micro_batches: Iterable[MicroBatch]) -> list[tuple[float, dict[str, torch.Tensor]]]:
        return [(weight, own_update(x, y, opt, cfg.grad_clip, autocast)) for weight, x, y, _ in micro_batches]
    return update


class RunLog:
    """The run's records: training losses every `log_every` steps, validation scores at epoch ends.

    All are kept in `records` (checkpoints hold them). With a folder (the main process's run_dir)
    each is also appended to folder/metrics.jsonl and, when tensorboard is installed, written to
    folder/tensorboard. Opening rewrites metrics.jsonl from `records`, so that a resumed run's log
    holds exactly what its checkpoint knows: the lines of an interrupted tail are dropped.
    """

    def __init__(self, folder: Path | None, records: list[dict]):
        self.folder, self.records = folder, records
        self.board = tensorboard_writer(folder)
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))

    def write(self, record: dict) -> None:
        self.records.append(record)
        if self.folder is None:
            return
        with open(self.folder / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.board is not None:
            group = "val" if "epoch" in record else "train"
            for key, value in record.items():
                if key not in ("step", "epoch") and isinstance(value, (int, float)):
                    self.board.add_scalar(f"{group}/{key}", value, record["step"])

    def close(self) -> None:
        if self.board is not None:
            self.board.close()


class TrainingRun:
    """A run's set-up and everything that changes as it trains: device and processes, optimiser,
    schedule, gradient scaler, batch reader, the chosen update, loss history, metrics log and best epoch.

    With `resume` all of it continues from run_dir/last.pt. `save` writes that checkpoint (on the
    main process, when there is a run_dir); `end_epoch` validates and keeps the best model.
    """

    def __init__(self, model: torch.nn.Module, images, labels: np.ndarray, cfg: TrainConfig,
                 run_dir: str | Path | None, resume: bool, steps_per_epoch: int | None, log: Callable):
        self.model, self.cfg = model, cfg
        self.device, self.procs = join_processes(cfg)
        seed_everything(cfg.seed)
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True)
        dtype = autocast_dtype(cfg.precision, self.device)
        self.memory_format = configure_cuda(self.device, model, cfg.deterministic)
        autocast = partial(torch.autocast, self.device.type, dtype=dtype or torch.float32, enabled=dtype is not None)
        model.to(self.device).train()
        self.targets = seen_columns(model, labels)                              # (N,)
        self.opt = make_optimizer(cfg, [p for p in model.parameters() if p.requires_grad])
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda s: lr_factor(cfg, s))
        self.scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
        sampler = make_sampler(cfg, labels, steps_per_epoch)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.identity = {k: v for k, v in asdict(cfg).items() if k not in RESUME_MAY_CHANGE} | {"n_images": len(images)}
        fresh = {"history": [], "records": [], "best": None, "step": 0}
        state = self.restore(sampler, log) if resume else fresh
        self.history, self.best, self.first_step = state["history"], state["best"], state["step"]
        self.epoch = sampler.epoch
        self.reader = BatchReader(images, sampler, cfg.workers, pin=self.device.type == "cuda",
                                  part=(self.procs.rank, self.procs.world))
        self.metrics_log = RunLog(self.run_dir if self.procs.main else None, state["records"])
        self.update = choose_update(model, cfg, self.procs, self.device, self.opt, self.scaler, autocast)

    def restore(self, sampler: EpochSampler | EpisodeSampler, log: Callable) -> dict:
        """Load run_dir/last.pt into the model, optimiser, schedule, scaler, sampler and the global
        random generators, and return it; a checkpoint of another configuration is refused."""
        if self.run_dir is None:
            raise ValueError("resume=True needs the run_dir of the run to continue")
        state = checkpoint.load(self.run_dir / "last.pt", config=self.identity)
        checkpoint.load_trainable_state(self.model, state["model"], str(self.run_dir / "last.pt"))
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        sampler.load_state_dict(state["sampler"])
        set_rng_state(state["rng"])
        log(f"resumed {self.run_dir} at step {state['step']}/{self.cfg.steps} (epoch {sampler.epoch})")
        return state

    def micro_batches(self, mine: np.ndarray, pixels: torch.Tensor, normalize: Callable,
                      transform: Callable | None) -> Iterator[MicroBatch]:
        """This process's batch (indices `mine`, uint8 `pixels` (b, H, W, 3)) as `grad_accum`
        micro-batches (weight, x (b', 3, H, W), y (b',), is_last) on the device, each made when the
        update asks for it."""
        splits = np.array_split(np.arange(len(mine)), self.cfg.grad_accum)
        for i, micro in enumerate(splits):
            rows = slice(micro[0], micro[-1] + 1)                               # a view: pinned pixels stay pinned
            x = normalize(pixels[rows].to(self.device, non_blocking=True))      # (b', 3, H, W)
            if transform is not None:
                x = transform(x)
            y = torch.from_numpy(self.targets[mine[rows]])
            if self.device.type == "cuda":                                      # a copy from pageable memory would sync
                x, y = x.contiguous(memory_format=self.memory_format), y.pin_memory()
            yield len(micro) / len(mine), x, y.to(self.device, non_blocking=True), i == len(splits) - 1

    def end_epoch(self, on_epoch_end: Callable[[torch.nn.Module, int], dict], step: int) -> None:
        """Validate on the main process (`on_epoch_end(model, epoch)` returns metrics), log the scores
        and keep the model with the best "H" in run_dir/best.pt; the other processes wait."""
        if self.procs.main:
            self.model.eval()
            scores = on_epoch_end(self.model, self.epoch)
            self.model.train()
            self.metrics_log.write({"epoch": self.epoch, "step": step, **scores})
            if "H" in scores and (self.best is None or scores["H"] > self.best["H"]):
                self.best = {"epoch": self.epoch, "step": step, **scores}
                if self.run_dir is not None:
                    checkpoint.save(self.run_dir / "best.pt", {"config": self.identity, **self.best,
                                                               "model": checkpoint.trainable_state(self.model)})
        self.procs.barrier()

    def save(self, step: int) -> None:
        """Write run_dir/last.pt atomically: everything needed to continue exactly after `step` steps."""
        if self.run_dir is not None and self.procs.main:
            checkpoint.save(self.run_dir / "last.pt", {
                "config": self.identity, "step": step, "model": checkpoint.trainable_state(self.model),
                "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
                "scaler": self.scaler.state_dict(), "sampler": self.reader.state_dict(), "rng": rng_state(),
                "history": self.history, "records": self.metrics_log.records, "best": self.best})

    def close(self) -> None:
        self.reader.close()
        self.metrics_log.close()


def train(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray, cfg: TrainConfig, *,
          normalize: Callable[[torch.Tensor], torch.Tensor], log=print,
          run_dir: str | Path | None = None, resume: bool = False,
          on_epoch_end: Callable[[torch.nn.Module, int], dict] | None = None,
          transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
          steps_per_epoch: int | None = None) -> list[dict]:
    """Train on uint8 images (N, H, W, 3) with class ids `labels` (N,); returns the loss history.

    Adam or SGD (L2-style weight decay, as the papers' code), the learning rate of `lr_factor`,
    gradient clipping, fp32 on the CPU and bf16 autocast on CUDA. A model with an
    `own_update(x, labels, optimizer, grad_clip, autocast)` method (Mg-MRN's released per-stage
    steps) makes its backward passes and optimiser steps itself (`choose_update`). The loss terms
    are read from the device once per step, after the update (one host-device sync); a non-finite
    term stops the run with the step and the term that went wrong. On CUDA, TF32 matmuls, cuDNN's
    autotuner and channels-last inputs for CNNs are on (`runtime.configure_cuda`).
    `on_epoch_end(model, epoch)` returns validation metrics (with "H" the best model is kept);
    `normalize` turns uint8 pixels into the backbone's input: always the dataset's own
    (`world.normalize`), since a toy backbone and an ImageNet one expect different pixels; `transform`
    augments that batch on the device; `steps_per_epoch` sets the length of an epoch of the
    "episodes" sampler.
    """
    run = TrainingRun(model, images, labels, cfg, run_dir, resume, steps_per_epoch, log)   # set-up or resume
    main = run.procs.main
    bar = tqdm(total=cfg.steps, initial=run.first_step, disable=not (cfg.progress and main), desc="train")
    start = time.time()
    for step in range(run.first_step, cfg.steps):
        mine, epoch_done, pixels = run.reader.next()                        # this process's share of the batch
        run.epoch += epoch_done
        parts = run.update(run.micro_batches(mine, pixels, normalize, transform))   # (weight, loss terms) each
        run.sched.step()
        terms = fetch_terms(parts, run.procs.mean)                          # the step's one host-device sync
        check_finite(terms, step)                                           # the mean over processes: all stop alike
        run.history.append({k: round(v, 5) for k, v in terms.items()})
        bar.update(1)

        if step % cfg.log_every == 0 or step == cfg.steps - 1:
            run.metrics_log.write({"step": step, **run.history[-1], "lr": run.sched.get_last_lr()[0]})
            if not cfg.progress and main:
                log(f"step {step}/{cfg.steps} loss {run.history[-1]['total']:.4f} ({time.time() - start:.0f} s)")
        if epoch_done and on_epoch_end is not None:
            run.end_epoch(on_epoch_end, step)
        if epoch_done or (cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0):
            run.save(step + 1)
    bar.close()
    run.close()
    run.save(cfg.steps)
    model.eval()
    return run.history
