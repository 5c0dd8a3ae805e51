"""Figures of chapter 10 (what the models see): embeddings, attention against controls, seen-unseen
curves with operating points, the confusion strip, and confused classes with example images."""
from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.patches import Patch

from . import metrics
from .plots import attention_overlay
from .qualitative import CALIBRATION, operating_point
from .toyworld import birds

STRIP = {"unseen": ("right", "another unseen class", "a seen class"),
         "seen": ("right", "another seen class", "an unseen class")}
STRIP_COLOURS = ("tab:green", "tab:orange", "tab:red")


def tsne(embedding: np.ndarray, seed: int = 0) -> np.ndarray:
    """A 2-D t-SNE (scikit-learn, cosine distances, perplexity 20 or less for few points) of (n, d) -> (n, 2).

    Runs on one thread: on a shared CPU, OpenMP threads waiting for each other made a 200-point
    t-SNE ten times slower than one thread does."""
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits
    perplexity = min(20.0, (len(embedding) - 1) / 3)
    with threadpool_limits(1):
        return TSNE(n_components=2, perplexity=perplexity, metric="cosine", init="pca",
                    random_state=seed).fit_transform(np.asarray(embedding, dtype=np.float64))


def embedding_panel(ax, points: np.ndarray, labels: np.ndarray, is_unseen: np.ndarray, title: str) -> None:
    """2-D points coloured by class (tab20, cycled), circles for seen and triangles for unseen classes."""
    classes = np.unique(labels)
    colour = {c: k % 20 for k, c in enumerate(classes)}
    cmap = matplotlib.colormaps["tab20"]
    for unseen, marker in ((False, "o"), (True, "^")):
        keep = is_unseen == unseen
        ax.scatter(points[keep, 0], points[keep, 1], s=9, marker=marker,
                   c=[cmap(colour[c]) for c in labels[keep]], linewidths=0)
    ax.set_xticks([]); ax.set_yticks([])
    ax.set_title(title, fontsize=8)


def control_bars(ax, rows: dict[str, dict[str, float]], measure: str, chance: float | dict[str, float] | None = None,
                 ylabel: str = "") -> None:
    """One group of bars per model, one bar per condition (`rows`: model -> condition -> value), and the
    level of uniform attention: one line, or a dashed segment over each model's group (`chance`: model ->
    level) where it depends on the model's grid."""
    conditions = list(next(iter(rows.values())))
    width = 0.8 / len(conditions)
    for k, condition in enumerate(conditions):
        ax.bar(np.arange(len(rows)) + (k - len(conditions) / 2 + 0.5) * width,
               [values[condition] for values in rows.values()], width, label=condition)
    if isinstance(chance, dict):
        ax.hlines([chance[m] for m in rows], np.arange(len(rows)) - 0.45, np.arange(len(rows)) + 0.45,
                  color="black", linewidth=0.8, linestyle="--", label="uniform attention")
    elif chance is not None:
        ax.axhline(chance, color="black", linewidth=0.8, linestyle="--", label="uniform attention")
    ax.set_xticks(range(len(rows)), list(rows), fontsize=8)
    ax.set_ylabel(ylabel or measure, fontsize=8)
    ax.set_title(measure, fontsize=9)


def attention_row(axes, image: np.ndarray, maps: dict[str, np.ndarray], part_map: np.ndarray | None = None,
                  label: str = "") -> None:
    """An image (with its part outlines if a part map is given, and `label` beside it) and one attention
    overlay per titled map (N,)."""
    axes[0].imshow(image, interpolation="nearest")
    axes[0].set_ylabel(label, fontsize=8)
    if part_map is not None:
        axes[0].contour(part_map, levels=np.arange(0.5, part_map.max() + 1), colors="white", linewidths=0.4)
    axes[0].set_xticks([]); axes[0].set_yticks([])
    for ax, (title, weights) in zip(axes[1:], maps.items()):
        attention_overlay(ax, image, weights, title=title)


def seen_unseen_panel(ax, scores: dict[str, np.ndarray], labels: np.ndarray, seen_cols: np.ndarray,
                      gammas: dict[str, float], marker_label: str = "validation gamma") -> None:
    """S against U for every model (its AUSUC in the legend) with the operating point at its gamma."""
    for k, (name, model_scores) in enumerate(scores.items()):
        curve = metrics.seen_unseen_curve(model_scores, labels, seen_cols, CALIBRATION)
        colour = f"C{k}"
        ax.plot(100 * curve.U, 100 * curve.S, color=colour, label=f"{name} (AUSUC {100 * curve.ausuc():.1f})")
        point = operating_point(model_scores, labels, seen_cols, gammas[name])
        ax.plot(point["U"], point["S"], "o", color=colour, markeredgecolor="black")
    ax.plot([], [], "o", color="white", markeredgecolor="black", label=marker_label)
    ax.set_xlabel("U (%)"); ax.set_ylabel("S (%)")
    ax.set_xlim(0, 100); ax.set_ylim(0, 100)
    ax.legend(fontsize=7)


def confusion_strip(ax, points: dict[str, dict]) -> None:
    """Where each model's unseen-class and seen-class test images go at one operating point
    (`qualitative.operating_point`): stacked shares right / same group / other group."""
    rows = [(name, group) for name in points for group in ("unseen", "seen")]
    for y, (name, group) in enumerate(rows):
        left = 0.0
        for share, colour, what in zip(points[name]["strip"][group], STRIP_COLOURS, STRIP[group]):
            ax.barh(y, share, left=left, color=colour, edgecolor="white")
            if share > 8:
                ax.text(left + share / 2, y, f"{share:.0f}", ha="center", va="center", fontsize=7)
            left += share
    ax.set_yticks(range(len(rows)), [f"{name}: {group} images" for name, group in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 100); ax.set_xlabel("share of the images (%)", fontsize=8)
    ax.legend([Patch(color=c) for c in STRIP_COLOURS],
              ["named right", "other class of its own group", "class of the other group"],
              fontsize=7, loc="lower right", ncol=3, bbox_to_anchor=(1, 1.0))


def gamma_figure(fig, scores: dict[str, np.ndarray], labels: np.ndarray, seen_cols: np.ndarray, gamma: float,
                 validation_gammas: dict[str, float]) -> dict[str, dict]:
    """The widget's figure at one gamma, shared by all models (every score is z-scored per row, so a
    gamma means the same on each): the curves with the validation gammas (hollow) and this gamma
    (filled), and the confusion strip at this gamma. Returns the operating points."""
    fig.clear()
    curve_ax, strip_ax = fig.subplots(1, 2, gridspec_kw={"width_ratios": (1, 1.4)})
    seen_unseen_panel(curve_ax, scores, labels, seen_cols, {name: gamma for name in scores},
                      marker_label=f"gamma = {gamma:.2f}")
    for k, (name, model_scores) in enumerate(scores.items()):
        at_validation = operating_point(model_scores, labels, seen_cols, validation_gammas[name])
        curve_ax.plot(at_validation["U"], at_validation["S"], "o", markerfacecolor="none", markeredgecolor=f"C{k}")
    curve_ax.plot([], [], "o", markerfacecolor="none", markeredgecolor="black", label="validation gamma")
    curve_ax.legend(fontsize=7)
    points = {name: operating_point(s, labels, seen_cols, gamma) for name, s in scores.items()}
    confusion_strip(strip_ax, points)
    strip_ax.set_title("  ".join(f"{n}: U {p['U']:.1f} S {p['S']:.1f} H {p['H']:.1f}" for n, p in points.items()),
                       fontsize=7, pad=18)
    fig.tight_layout()
    return points


def confused_examples(axes, world, pairs: list[tuple[str, int, int, float]], test_seed: int = 0) -> None:
    """One row per confusion (model, true class, predicted class, share): an image of the true class and
    one of the class it is taken for, with the attribute groups whose dominant values differ."""
    rng = np.random.default_rng(test_seed)
    for row, (model, true, wrong, share) in zip(axes, pairs):
        for ax, c, role in ((row[0], true, "true class"), (row[1], wrong, "taken for")):
            pool = np.flatnonzero(world.labels == c)
            ax.imshow(world.images[rng.choice(pool)], interpolation="nearest")
            kind = "unseen" if c in world.unseen_classes else "seen"
            ax.set_title(f"{role}: {world.class_names[c][4:]} ({kind})", fontsize=6)
            ax.set_xticks([]); ax.set_yticks([])
        a, b = world.species[true], world.species[wrong]
        differ = [f"{g.name.removeprefix('has_')}: {g.values[a.dominant[k]]} / {g.values[b.dominant[k]]}"
                  for k, g in enumerate(birds.GROUPS) if a.dominant[k] != b.dominant[k]]
        row[0].set_ylabel(f"{model}\n{100 * share:.0f} % of the class", fontsize=7)
        row[1].text(1.05, 0.5, "dominant values that differ:\n" + "\n".join(differ), transform=row[1].transAxes,
                    fontsize=6, va="center")


def gamma_widget(scores: dict[str, np.ndarray], labels: np.ndarray, seen_cols: np.ndarray,
                 validation_gammas: dict[str, float], value: float, low: float = -1.0, high: float = 4.0):
    """A gamma slider above `gamma_figure` at the slider's gamma, redrawn on every move.

    The figure is an `ipywidgets.Image` holding a PNG, not an `Output` widget: notebooks run by
    papermill wait for ever on a cell that draws into an `Output` widget, and an image keeps its
    last picture in the widget state that a rendered book embeds."""
    import io

    import ipywidgets as widgets
    from matplotlib.figure import Figure

    def png(gamma: float) -> bytes:
        fig = Figure(figsize=(12, 4))
        gamma_figure(fig, scores, labels, seen_cols, gamma, validation_gammas)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=80)
        return buffer.getvalue()

    if not low <= value <= high:
        raise ValueError(f"the slider's start value {value} is outside [{low}, {high}]; widen the range")
    slider = widgets.FloatSlider(value=value, min=low, max=high, step=0.05, description="gamma",
                                 continuous_update=False)
    image = widgets.Image(value=png(value), format="png")
    slider.observe(lambda change: setattr(image, "value", png(change["new"])), names="value")
    return widgets.VBox([slider, image])
