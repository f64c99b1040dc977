"""Charts for the reports, drawn by matplotlib with its Agg backend (no screen needed) and
rendered to PNG in memory, so nothing is ever written to disk beside the document.

Both charts must read in black and white: a school photocopies what it sends. Lines differ by
marker and dash as well as by grey, and bars carry hatching."""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

#: The ratings on an ordinal axis, lowest first (the review form's choices).
RATING_LEVELS = ("not-achieved", "partly", "achieved")
RATING_LABELS = ("Not achieved", "Partly achieved", "Achieved")

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_DASHES = ("-", "--", ":", "-.")
_GREYS = ("0.0", "0.35", "0.55", "0.2", "0.45")
_HATCHES = ("//", "..", "xx", "\\\\", "--", "++", "oo", "**")


def _pyplot():
    """matplotlib's pyplot on the Agg backend, imported only when a chart is drawn: importing it
    costs about a second, which ``senforms status`` and the watcher's start should not pay."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.family": "sans-serif", "font.sans-serif": ["Liberation Sans", "Arial", "DejaVu Sans"]})
    return plt


def warm() -> None:
    """Import matplotlib now (for a caller about to hold a lock while it draws)."""
    _pyplot()


@dataclass(frozen=True)
class Series:
    label: str
    points: list[tuple[int, str]]  # (index of the review, rating)


def ratings_chart(reviews: Sequence[tuple[date, int]], series: Sequence[Series]) -> bytes:
    """Ratings by review: one line per outcome over the reviews (``reviews`` are (date, cycle)),
    on the ordinal axis Not achieved / Partly achieved / Achieved."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.0, 3.2 + 0.22 * len(series)), dpi=150)
    try:
        for i, line in enumerate(series):
            xs = [x for x, _ in line.points]
            # A small offset keeps outcomes with the same ratings from hiding each other.
            offset = (i - (len(series) - 1) / 2) * 0.05
            ys = [RATING_LEVELS.index(r) + offset for _, r in line.points]
            ax.plot(
                xs,
                ys,
                marker=_MARKERS[i % len(_MARKERS)],
                linestyle=_DASHES[i % len(_DASHES)],
                color=_GREYS[i % len(_GREYS)],
                markersize=7,
                linewidth=1.6,
                label=textwrap.shorten(line.label, 70, placeholder="..."),
            )
        ax.set_yticks(range(len(RATING_LEVELS)), RATING_LABELS)
        ax.set_ylim(-0.4, len(RATING_LEVELS) - 0.6)
        ax.set_xticks(
            range(len(reviews)), [f"Cycle {c}\n{d:%d/%m/%Y}" for d, c in reviews], fontsize=8
        )
        ax.set_xlim(-0.4, max(len(reviews) - 0.6, 0.4))
        ax.set_xlabel("Review")
        ax.grid(axis="y", color="0.85", linewidth=0.8)
        ax.set_title("Progress on each outcome at each review", fontsize=11)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.28), fontsize=8, frameon=False, ncol=1)
        fig.tight_layout()
        return _png(fig)
    finally:
        plt.close(fig)


def bar_chart(labels: Sequence[str], values: Sequence[float], *, title: str, axis: str) -> bytes:
    """Horizontal bars, hatched so they read in black and white."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.0, 1.2 + 0.35 * max(len(labels), 1)), dpi=150)
    try:
        shown = [textwrap.shorten(label, 45, placeholder="...") for label in labels]
        bars = ax.barh(range(len(shown)), values, color="white", edgecolor="black")
        for i, bar in enumerate(bars):
            bar.set_hatch(_HATCHES[i % len(_HATCHES)])
        ax.set_yticks(range(len(shown)), shown, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(axis)
        ax.set_title(title, fontsize=11)
        ax.grid(axis="x", color="0.85", linewidth=0.8)
        fig.tight_layout()
        return _png(fig)
    finally:
        plt.close(fig)


def _png(fig) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()
