"""Observing what a model computes with forward hooks, so that no module keeps a tensor on `self`.

A module with an intermediate result worth looking at (an attention map, a mask) routes it
through a named identity submodule, a tap:

    self.attention_map = nn.Identity()          # in __init__
    attn = self.attention_map(attn)              # in forward: returns attn unchanged

An observer registers a forward hook on the tap and receives the tensor as the hook's output.
The tap holds no parameters and no state, so it changes neither the arithmetic nor the
`state_dict`, and without hooks it costs one function call.

`recorded(tap)` collects one tap's outputs inside a `with` block; `HookRecorder` is the base of
the models' recorders (`zsl_lib.vspcn.AttentionRecorder`, `zsl_lib.mgmrn.AttentionRecorder`),
which register their hooks on entry and remove them on exit.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn as nn

Hook = Callable[[nn.Module, tuple, torch.Tensor], None]


@contextmanager
def recorded(module: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Within the block, the detached output of every forward call of `module`, in call order."""
    outputs: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda _, inputs, output: outputs.append(output.detach()))
    try:
        yield outputs
    finally:
        handle.remove()


def keep_last(slots: list, index: int) -> Hook:
    """A forward hook that puts the module's detached output in `slots[index]`: each forward pass
    overwrites the previous one, so the slots hold the last pass."""
    def hook(module, inputs, output):
        slots[index] = output.detach()
    return hook


class HookRecorder:
    """Context manager registering the forward hooks of `hooks()` on entry, removing them on exit."""

    def __init__(self):
        self._handles = []

    def hooks(self) -> Iterator[tuple[nn.Module, Hook]]:
        """(module, forward hook) pairs to register."""
        raise NotImplementedError

    def __enter__(self):
        for module, hook in self.hooks():
            self._handles.append(module.register_forward_hook(hook))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    @staticmethod
    def recorded_slots(slots: list, what: str) -> list:
        """`slots` once a forward pass has filled them; a clear error if none has."""
        if any(s is None for s in slots):
            raise RuntimeError(f"no forward pass was recorded for {what}; call the model inside the `with` block")
        return slots
