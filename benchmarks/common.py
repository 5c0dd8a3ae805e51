"""What every benchmark script shares: alternating timings, goal verdicts, and result files
with provenance."""
import statistics
import time
from pathlib import Path

from torch.utils.flop_counter import FlopCounterMode

from zsl_lib import provenance

RESULTS = Path(__file__).parent / "results"


def median_seconds(steps: dict, repeats: int, warmup: int = 1) -> dict[str, float]:
    """Median wall time of each callable in `steps`, calling them in turn `repeats` times after
    `warmup` calls each, so that the machine's noise hits all of them alike."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    seconds = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            seconds[name].append(time.perf_counter() - start)
    return {name: statistics.median(s) for name, s in seconds.items()}


def step_flops(step) -> int:
    """Floating-point operations of one step (forward, backward, update), counted by torch."""
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def judged(goal: dict, value: float) -> dict:
    """A measured `value` against `goal` ({"text", "measure", "at_most"}: what is judged, the
    entry's key that holds it, and its largest allowed value), as a result entry records it."""
    return {"goal": goal, "meets_goal": value <= goal["at_most"]}


def save_result(name: str, config: dict, metrics: dict, wall_time_s: float) -> Path:
    """benchmarks/results/<name>.json: the metrics with the run's configuration and provenance."""
    out = RESULTS / f"{name}.json"
    provenance.save_json(out, provenance.run_record(name, config, [0], metrics, wall_time_s))
    return out


def save_entries(name: str, config: dict, entries: dict[str, dict], seconds: dict[str, float],
                 sha: str | None, seeds: tuple[int, ...] = (0,), results: Path = RESULTS) -> Path:
    """Merge this run's `entries` into `results`/<name>.json: each replaces the stored entry of its
    key, and the stored entries of other keys stay as they are, so re-running one backbone or
    one model keeps the others.

    Entries of one file may come from different commits, machines and options, so each carries
    its own provenance under "provenance" (a `provenance.run_record` without metrics: date,
    git_sha, this run's `config` and `seeds`, environment, and `seconds[key]`, the wall time of
    that entry). The top level stays a provenance record, of the run that wrote the file last,
    with every entry in its metrics. `sha` is `provenance.git_sha()` taken when the run
    started. The file is written atomically."""
    path = results / f"{name}.json"
    merged = provenance.load_json(path)["metrics"] if path.exists() else {}
    for key, metrics in entries.items():
        stamp = provenance.run_record(f"{name}/{key}", config, list(seeds), {}, seconds[key], sha)
        del stamp["metrics"]
        merged[key] = metrics | {"provenance": stamp}
    provenance.save_json(path, provenance.run_record(name, config, list(seeds), merged, sum(seconds.values()), sha))
    return path
