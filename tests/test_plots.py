"""The chapters' shared figure helpers."""
import numpy as np
import pytest

from zsl_lib import plots


def test_smooth_is_a_running_mean_shorter_at_the_start():
    np.testing.assert_allclose(plots.smooth([1, 3, 5, 7], window=2), [1, 2, 4, 6])
    np.testing.assert_allclose(plots.smooth([2, 4], window=10), [2, 3])


def test_patch_grid_is_row_major_and_square():
    grid = plots.patch_grid(np.arange(16))
    assert grid.shape == (4, 4) and grid[1, 0] == 4
    with pytest.raises(ValueError, match="do not form a square grid"):
        plots.patch_grid(np.arange(12))


def test_validation_curves_plot_each_run_against_its_steps_and_mark_the_budget():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    runs = {"long": {"metrics": {"validation_curve": [{"epoch": 1, "step": 40, "H_val": 10.0},
                                                      {"epoch": 2, "step": 80, "H_val": 30.5}]}},
            "book": {"metrics": {"validation_curve": [{"epoch": 1, "step": 40, "H_val": 12.0}]}}}
    fig, ax = plt.subplots()
    plots.validation_curves(ax, runs, budget_steps=40)
    long, book, budget = ax.get_lines()
    assert list(long.get_xdata()) == [40, 80] and list(long.get_ydata()) == [10.0, 30.5]
    assert list(book.get_ydata()) == [12.0] and list(budget.get_xdata()) == [40, 40]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["long", "book", "book recipe"]
    plt.close(fig)
