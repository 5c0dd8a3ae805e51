"""Every stored result records how it was made: config, seed, versions, device, git SHA."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

from .runtime import atomic_open

REPO_ROOT = Path(__file__).resolve().parent.parent


# Folders of stored results: a run that writes into them does not make the code it ran "dirty".
OUTPUT_FOLDERS = ("results", "benchmarks/results")


def git_sha(root: Path = REPO_ROOT) -> str | None:
    """HEAD of the checkout at `root`, with "-dirty" if tracked files outside `OUTPUT_FOLDERS`
    were changed (a benchmark that runs after another one finds the first one's result file
    rewritten; that is output, not code); None outside git."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                *(f":(exclude){folder}" for folder in OUTPUT_FOLDERS)], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return sha + ("-dirty" if dirty else "")


def environment() -> dict[str, str]:
    import numpy
    import timm
    import torch
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    return {"python": platform.python_version(), "torch": torch.__version__, "timm": timm.__version__,
            "numpy": numpy.__version__, "device": device}


def run_record(name: str, config: dict[str, Any], seeds: list[int], metrics: dict[str, Any],
               wall_time_s: float, sha: str | None = None) -> dict[str, Any]:
    """One run's provenance and results, ready for `save_json`.

    Pass `sha=git_sha()` taken when the run started, so that editing files while a long
    run goes on does not misreport the code it ran.
    """
    return {"name": name, "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "git_sha": sha or git_sha(),
            "config": config, "seeds": seeds, "environment": environment(),
            "wall_time_s": round(wall_time_s, 1), "metrics": metrics}


def save_json(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON atomically (see `runtime.atomic_open`)."""
    with atomic_open(path) as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


def load_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no stored result at {path}; run the cell or script that makes it")
    with open(path) as f:
        return json.load(f)


class MissingResult(LookupError):
    """A stored result, or an entry of one, that the repository does not hold."""


def stored_entry(path: str | os.PathLike, key: str, remake: str) -> dict[str, Any]:
    """Entry `key` of the stored result at `path` (its `metrics[key]`).

    A benchmark's result file holds one entry per backbone or model, and a run of some of them
    keeps the others; a chapter that reads an entry the file lacks gets a `MissingResult` that
    names the file, the entry and `remake`, the command that makes it, instead of a KeyError."""
    path = Path(path)
    shown = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
    if not path.exists():
        raise MissingResult(f"{shown} is not stored; make it with: {remake}")
    metrics = load_json(path)["metrics"]
    if key not in metrics:
        raise MissingResult(f"{shown} has no entry {key!r} (it holds {', '.join(map(repr, metrics))}); "
                            f"make it with: {remake}")
    return metrics[key]


def describe(record: dict[str, Any]) -> str:
    """A one-paragraph provenance line for a chapter to print under a stored result."""
    env = record["environment"]
    sha = record["git_sha"] or "unknown"
    commit = sha[:12] + (" with uncommitted changes" if sha.endswith("-dirty") else "")
    return (f"run '{record['name']}' of {record['date']}, git {commit}, "
            f"seeds {record['seeds']}, {env['device']}, torch {env['torch']}, timm {env['timm']}, "
            f"{record['wall_time_s']:.0f} s")
