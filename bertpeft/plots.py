"""Figures. Each function takes results (dicts read from a run's JSONs) and returns a matplotlib Figure."""

from __future__ import annotations

from pathlib import Path


def _plt():
    import matplotlib

    if matplotlib.get_backend().lower() == "agg" or "ipykernel" not in __import__("sys").modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, folder: str | Path, name: str) -> Path:
    path = Path(folder) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def plot_token_lengths(lengths, max_length: int):
    """Histogram of review lengths in tokens, with the truncation limit marked."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.hist(lengths, bins=50, color="#4C72B0")
    ax.axvline(max_length, color="#C44E52", linestyle="--", label=f"max_length = {max_length}")
    ax.set(xlabel="tokens per review", ylabel="reviews", title="Review length in tokens")
    ax.legend()
    return fig


def plot_loss_curve(result: dict):
    """Training loss (and evaluation accuracy, right axis) against the step."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    curve = result.get("loss_curve") or []
    if curve:
        ax.plot([p["step"] for p in curve], [p["loss"] for p in curve], color="#4C72B0", label="training loss")
    ax.set(xlabel="step", ylabel="loss", title=f"{result['config']}: training")
    evals = result.get("eval_curve") or []
    if evals:
        right = ax.twinx()
        right.plot([p["step"] for p in evals], [p["accuracy"] for p in evals], "o-", color="#55A868",
                   label="eval accuracy")
        right.set_ylabel("accuracy")
    if not curve:
        ax.text(0.5, 0.5, "not trained", ha="center", va="center", transform=ax.transAxes)
    return fig
