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
