"""Checkpoints: what training changed, written atomically, read back with clear errors.

A model's *trainable state* is its parameters with `requires_grad` and its batch-norm
running statistics (for VSPCN a few MB, not the frozen backbone's 300 MB; for Mg-MRN, which
fine-tunes its CNN, the whole network). A training checkpoint adds the optimiser, scheduler,
gradient scaler, RNG states, the sampler's position and the history so far, so that a
resumed run continues exactly where the interrupted one stopped.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn as nn

from .runtime import atomic_open

FORMAT = "zsl_lib.checkpoint/1"


def changing_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """What training changes: the parameters with `requires_grad`, and the running statistics of
    batch-norm layers (they move in train mode even when the layer's weights are frozen)."""
    tensors = {name: p for name, p in model.named_parameters() if p.requires_grad}
    for prefix, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats:
            tensors |= {f"{prefix}.{name}": b for name, b in module.named_buffers(recurse=False)}
    return tensors


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """`changing_tensors` detached on the CPU."""
    return {name: t.detach().cpu().clone() for name, t in changing_tensors(model).items()}


def load_trainable_state(model: nn.Module, state: dict[str, torch.Tensor], source: str = "state") -> None:
    """Load a `trainable_state` of a model with the same configuration and sizes."""
    own = changing_tensors(model)
    missing, extra = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or extra:
        raise ValueError(f"{source} does not fit this model (missing {missing[:3]}, unexpected {extra[:3]}): "
                         "build the model with the configuration recorded beside it")
    for name, t in own.items():
        if state[name].shape != t.shape:
            raise ValueError(f"{source}: {name} has shape {tuple(state[name].shape)}, the model "
                             f"{tuple(t.shape)}: build the model for the same world and backbone")
        with torch.no_grad():
            t.copy_(state[name])


def save(path: str | os.PathLike, payload: dict) -> None:
    """Write `payload` (tensors, numbers, plain containers) atomically: never a half-written file."""
    with atomic_open(path, "wb") as f:
        torch.save({"format": FORMAT, **payload}, f)


def load(path: str | os.PathLike, config: dict | None = None) -> dict:
    """Read a checkpoint written by `save`; with `config`, check that it belongs to that run.

    Every failure names the file and what to do: a missing file, a damaged one (e.g. a
    copy cut short), a file that is not a zsl_lib checkpoint, or one from another run.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; check the path (a run writes {path.name} "
                                "into its run folder)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for truncated, foreign or pickled-object files
        raise ValueError(f"checkpoint {path} is damaged and cannot be read ({type(err).__name__}: {err}); "
                         "delete it to restart the run, or resume from a copy") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a zsl_lib training checkpoint (expected format {FORMAT!r})")
    if config is not None and payload.get("config") != config:
        theirs = payload.get("config") or {}
        differ = sorted(k for k in set(theirs) | set(config) if theirs.get(k) != config.get(k))
        raise ValueError(f"checkpoint {path} belongs to a run with a different configuration "
                         f"(keys {differ}: stored {[theirs.get(k) for k in differ]}, now {[config.get(k) for k in differ]}); "
                         "resume with the original configuration or start a new run folder")
    return payload
