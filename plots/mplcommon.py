"""matplotlib set-up shared by the comparison charts: one style, deterministic files.

Files carry no date, no software version and no random ids (svg.hashsalt is fixed), so a
chart changes in git only when its data does. Text stays text in the SVG (svg.fonttype none).
"""
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (after the backend is chosen)

STYLE = {
    "svg.hashsalt": "knit-charts",
    "svg.fonttype": "none",
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.8,
    "legend.frameon": False,
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "path.simplify": False,
}
METADATA = {"svg": {"Date": None, "Creator": "knit plots"}, "png": {"Software": None}}


def figure(width_px, height_px, **subplots):
    plt.rcParams.update(STYLE)
    return plt.subplots(figsize=(width_px / 100, height_px / 100), **subplots)


def footer(fig, *lines):
    """Machine, date and commit of the data, at the bottom left."""
    fig.text(0.008, 0.008, "\n".join(lines), fontsize=7, color="#555555", ha="left", va="bottom")


def message(ax, text):
    """Say in the chart that a panel has no data."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="#a00000")
    ax.set_xticks([])
    ax.set_yticks([])


def save(fig, base, formats):
    """Writes base.svg / base.png; returns the paths."""
    paths = []
    for fmt in formats:
        path = f"{base}.{fmt}"
        fig.savefig(path, format=fmt, metadata=METADATA[fmt])
        paths.append(path)
    plt.close(fig)
    return paths


def remove(base, formats):
    for fmt in formats:
        if os.path.exists(f"{base}.{fmt}"):
            os.remove(f"{base}.{fmt}")
