"""What every problem's ``render()`` shares: a matplotlib figure as an RGB array."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def figure_rgb(fig: plt.Figure) -> np.ndarray:
    """Draw ``fig``, close it and return its pixels as uint8 ``[height, width, 3]``."""
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return rgb
