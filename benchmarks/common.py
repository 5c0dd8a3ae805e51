"""What every benchmark script shares: alternating timings, and a result file with provenance."""
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


def save_result(name: str, config: dict, metrics: dict, wall_time_s: float) -> Path:
    """benchmarks/results/<name>.json: the metrics with the run's configuration and provenance."""
    out = RESULTS / f"{name}.json"
    provenance.save_json(out, provenance.run_record(name, config, [0], metrics, wall_time_s))
    return out
