"""Execute the book's chapters with papermill in a chosen mode, and record how long each took.

    python -m zsl_lib.book execute --mode smoke --out _executed            # every chapter, in _toc.yml order
    python -m zsl_lib.book execute --mode book --out _executed --chapters 05 07 --seed 1 --device cuda
    python -m zsl_lib.book timings                                         # what is stored

Each chapter's `parameters` cell is followed by papermill's injected cell with `MODE` (and
`SEED`, `DEVICE` when given); the executed notebook is written to `OUT/<chapter>.ipynb`, run
in the `book/` folder as the build runs it. A chapter's modes are the quoted names in the
comment of its `MODE` line (e.g. `MODE = "smoke"   # "smoke" | "book"`); a chapter without the
asked mode is skipped and said so.

The wall time of every executed chapter is stored in `results/timings.json` under its mode,
with the date, commit, device and threads; the timings appendix shows that table. A run of
some chapters updates their entries and keeps the others. A chapter that fails stops the run:
its output notebook holds the traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import time
from pathlib import Path

import yaml

from . import provenance
from .provenance import REPO_ROOT

TIMINGS = REPO_ROOT / "results" / "timings.json"
MODES = ("smoke", "book", "full")


def toc_pages(toc: Path = REPO_ROOT / "_toc.yml") -> list[Path]:
    """The pages of the table of contents (notebooks and .md pages), in reading order."""
    entries = yaml.safe_load(toc.read_text())
    files = [chapter["file"] for part in entries.get("parts", []) for chapter in part.get("chapters", [])]
    return [REPO_ROOT / f"{name}{suffix}" for name in files for suffix in (".ipynb", ".md")
            if (REPO_ROOT / f"{name}{suffix}").is_file()]


def chapters(toc: Path = REPO_ROOT / "_toc.yml") -> list[Path]:
    """The notebooks of the table of contents, in reading order."""
    return [page for page in toc_pages(toc) if page.suffix == ".ipynb"]


def chapter_modes(notebook: Path) -> tuple[str, ...]:
    """The modes a chapter runs in: the quoted names in the comment of its parameters cell's MODE line."""
    cells = json.loads(notebook.read_text())["cells"]
    for cell in cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            for line in "".join(cell["source"]).splitlines():
                code, _, comment = line.partition("#")
                if code.strip().startswith("MODE"):
                    return tuple(name for name in re.findall(r'"(\w+)"', comment) if name in MODES)
    raise ValueError(f"{notebook}: no MODE line in a cell tagged 'parameters'; add one, e.g. "
                     'MODE = "smoke"   # "smoke" | "book"')


def select(notebooks: list[Path], wanted: list[str] | None) -> list[Path]:
    """The notebooks whose file name starts with one of `wanted` (all when None)."""
    if not wanted:
        return notebooks
    chosen = [nb for nb in notebooks if any(nb.name.startswith(prefix) for prefix in wanted)]
    unknown = [prefix for prefix in wanted if not any(nb.name.startswith(prefix) for nb in notebooks)]
    if unknown:
        raise ValueError(f"--chapters {unknown}: no chapter of _toc.yml starts with that; chapters: "
                         f"{[nb.stem for nb in notebooks]}")
    return chosen


def store_timing(mode: str, chapter: str, seconds: float, cpu_seconds: float, load_before: float,
                 parameters: dict, sha: str | None, path: Path = TIMINGS) -> None:
    """Write one chapter's time into the stored table, keeping every other entry. `seconds` is wall
    time, which grows when other work shares the machine; `cpu_seconds` is the CPU time of the
    chapter's kernel, which does not (on an idle machine with n threads busy, wall ~ CPU / n);
    the load average before the chapter says how busy the machine was."""
    table = provenance.load_json(path) if path.exists() else {"name": "timings", "modes": {}}
    table["modes"].setdefault(mode, {})[chapter] = {
        "seconds": round(seconds, 1), "cpu_seconds": round(cpu_seconds, 1),
        "load_before": round(load_before, 2),
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "git_sha": sha,
        "parameters": parameters, "environment": provenance.environment()}
    provenance.save_json(path, table)


def children_cpu_seconds() -> float:
    """CPU time of this process's finished children (a chapter's kernel, once it has ended)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def execute(mode: str, out: Path, wanted: list[str] | None = None, seed: int | None = None,
            device: str | None = None, timings: Path = TIMINGS) -> dict[str, float]:
    """Execute the chosen chapters in `mode` into `out`; returns {chapter: seconds}."""
    import papermill
    from tqdm import tqdm
    if mode not in MODES:
        raise ValueError(f"--mode {mode!r}: choose one of {MODES}")
    parameters = {"MODE": mode} | ({"SEED": seed} if seed is not None else {}) | \
        ({"DEVICE": device} if device is not None else {})
    out.mkdir(parents=True, exist_ok=True)
    seconds, sha = {}, provenance.git_sha()
    todo = select(chapters(), wanted)
    bar = tqdm(todo, unit="chapter")
    for notebook in bar:
        bar.set_postfix_str(notebook.stem)
        if mode not in chapter_modes(notebook):
            bar.write(f"{notebook.stem}: skipped, it runs in {chapter_modes(notebook)} only")
            continue
        start, cpu_start, load = time.time(), children_cpu_seconds(), os.getloadavg()[0]
        papermill.execute_notebook(notebook, out / notebook.name, parameters=parameters, cwd=notebook.parent,
                                   kernel_name="python3", progress_bar=False)
        seconds[notebook.stem] = time.time() - start
        store_timing(mode, notebook.stem, seconds[notebook.stem], children_cpu_seconds() - cpu_start, load,
                     parameters, sha, timings)
        bar.write(f"{notebook.stem}: {seconds[notebook.stem]:.0f} s")
    return seconds


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m zsl_lib.book", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("execute", help="execute chapters with papermill and store their times")
    run.add_argument("--mode", choices=MODES, default="smoke")
    run.add_argument("--out", type=Path, required=True, help="folder for the executed notebooks")
    run.add_argument("--chapters", nargs="+", help="file-name prefixes, e.g. 05 appendix_a (default: all)")
    run.add_argument("--seed", type=int, help="SEED of every chapter (default: each chapter's own)")
    run.add_argument("--device", help="DEVICE of every chapter, e.g. cuda (default: each chapter's own)")
    sub.add_parser("timings", help="print the stored chapter times")
    args = parser.parse_args(argv)
    if args.command == "timings":
        print(json.dumps(provenance.load_json(TIMINGS)["modes"], indent=1))
        return
    from .cli import exit_on_user_error
    exit_on_user_error(lambda: execute(args.mode, args.out, args.chapters, args.seed, args.device))


if __name__ == "__main__":
    main()
