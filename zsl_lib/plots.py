"""Figures the chapters share: loss curves of several runs, validation learning curves, and
attention over image patches."""
from __future__ import annotations

import numpy as np


def smooth(values, window: int) -> np.ndarray:
    """Running mean over `window` steps (shorter at the start)."""
    values = np.asarray(values, dtype=np.float64)
    csum = np.cumsum(np.insert(values, 0, 0.0))
    starts = np.maximum(np.arange(1, len(values) + 1) - window, 0)
    return (csum[1:] - csum[starts]) / (np.arange(1, len(values) + 1) - starts)


def loss_curves(ax, runs: dict[str, list[dict]], term: str = "total", window: int = 10) -> None:
    """One smoothed curve of a loss term per run (`runs`: name -> `train` history)."""
    for name, history in runs.items():
        ax.plot(smooth([h[term] for h in history], window), label=name)
    ax.set_xlabel("step")
    ax.set_ylabel(f"{term} loss (running mean of {window})")
    ax.legend(fontsize=8)


def validation_curves(ax, runs: dict[str, dict], budget_steps: int) -> None:
    """Validation H at each epoch end against the validation run's step, one line per stored run
    (`runs`: label -> a record of `zsl_lib.experiment` with `metrics.validation_curve`), and a
    dashed line at `budget_steps`, the validation run of the book recipe."""
    for label, record in runs.items():
        curve = record["metrics"]["validation_curve"]
        ax.plot([p["step"] for p in curve], [p["H_val"] for p in curve], marker="o", markersize=3, label=label)
    ax.axvline(budget_steps, color="grey", linestyle="--", linewidth=1, label="book recipe")
    ax.set_xlabel("step of the validation run")
    ax.set_ylabel("H on validation classes (%)")
    ax.legend(fontsize=8)


def patch_grid(weights) -> np.ndarray:
    """(N,) weights over a square grid of patches -> (n, n)."""
    weights = np.asarray(weights, dtype=np.float64).reshape(-1)
    side = int(round(np.sqrt(len(weights))))
    if side * side != len(weights):
        raise ValueError(f"{len(weights)} patch weights do not form a square grid")
    return weights.reshape(side, side)


def attention_overlay(ax, image: np.ndarray, weights, title: str | None = None, alpha: float = 0.6) -> None:
    """An image with attention over its patches drawn on top (each patch one flat cell)."""
    grid = patch_grid(weights)
    size = image.shape[0]
    ax.imshow(image, interpolation="nearest")
    ax.imshow(grid, cmap="inferno", alpha=alpha, extent=(0, size, size, 0), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)


VERDICT_COLOURS = {"reproduced in direction": "tab:green", "not reproduced": "tab:red", "within noise": "tab:grey",
                   "higher": "tab:blue", "lower": "tab:orange", "incomplete": "white"}


def paired_differences(ax, table, metric: str = "H") -> None:
    """Each row of an ablation summary (`zsl_lib.ablation_report.summary`) against its comparison
    row: a small dot per world, a large one for the mean over worlds, coloured by the verdict,
    and the band of one paired difference's seed noise (+- sqrt(2) sigma) shaded around zero."""
    rows = table[table["verdict"] != "reference"].reset_index(drop=True)
    noise = table.attrs["noise"]
    if not np.isnan(noise):
        ax.axvspan(-noise, noise, color="0.9", zorder=0, label=f"seed noise (+-{noise:.1f})")
    ax.axvline(0, color="0.5", linewidth=0.8)
    for y, line in rows.iterrows():
        colour = VERDICT_COLOURS[line["verdict"]]
        ax.scatter(line["deltas"], [y] * len(line["deltas"]), s=12, color=colour, alpha=0.6)
        if not np.isnan(line["delta"]):
            ax.scatter([line["delta"]], [y], s=70, color=colour, edgecolor="black", linewidth=0.6)
    ax.set_yticks(range(len(rows)), [f"{label}  (vs {versus})" for label, versus in zip(rows["label"], rows["versus"])],
                  fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"paired difference in {metric} (points; same world, same seed)")
    handles = [ax.scatter([], [], s=50, color=c, edgecolor="black", linewidth=0.6, label=v)
               for v, c in VERDICT_COLOURS.items() if v in set(rows["verdict"])]
    ax.legend(handles=handles + ([ax.patches[0]] if ax.patches else []), fontsize=7, loc="best")


def sweep(ax, long, values: dict[str, float], metric: str = "H", name: str = "value") -> None:
    """`metric` against a swept value (`values`: row key -> value): one thin line per world (seed 0)
    and the mean over worlds with its sample standard deviation as error bars."""
    import seaborn as sns
    ax.set_xlabel(name)
    ax.set_ylabel(f"{metric} (%)")
    if len(long) == 0 or not long["row"].isin(values).any():
        return                                                          # nothing stored yet
    data = long[long["row"].isin(values) & (long["seed"] == 0)].assign(**{name: lambda d: d["row"].map(values)})
    sns.lineplot(data=data, x=name, y=metric, hue="world", estimator=None, units="world", palette="pastel",
                 linewidth=1, marker=".", ax=ax, legend=False)
    sns.lineplot(data=data, x=name, y=metric, errorbar="sd", err_style="bars", marker="o", color="black", ax=ax,
                 label="mean over worlds (sd)")


def gamma_curve(ax, points: dict, title: str | None = None) -> None:
    """U, S and H against gamma, from a stored seen-unseen curve (`experiment.curve_points`)."""
    gamma, U, S = (np.asarray(points[k]) for k in ("gamma", "U", "S"))
    H = np.where(U + S > 0, 2 * U * S / np.maximum(U + S, 1e-12), 0)
    for values, label in ((U, "U"), (S, "S"), (H, "H")):
        ax.plot(gamma, values, label=label)
    ax.set_xlabel("gamma")
    ax.set_ylabel("accuracy (%)")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)


def seen_unseen_curves(ax, curves: dict[str, dict]) -> None:
    """S against U, one stored seen-unseen curve per label; the area under each is its AUSUC."""
    for label, points in curves.items():
        ax.plot(points["U"], points["S"], label=label)
    ax.set_xlabel("U (%)")
    ax.set_ylabel("S (%)")
    ax.legend(fontsize=8)
