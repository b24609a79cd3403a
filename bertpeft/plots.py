"""Figures. Each function takes results (dicts read from a run's JSONs, or the table `report.results_table` makes
of them) and returns a matplotlib Figure."""

from __future__ import annotations

from pathlib import Path

from .config import CONFIGURATIONS, REFERENCE, entry
from .configurations import trains
from .layout import atomic_write_bytes
from .manifest import manifest_path, write
from .report import accuracy_with_interval, configuration_rank, confusion_counts, step_time_relative
from .result import Result


def _plt():
    import matplotlib

    if matplotlib.get_backend().lower() == "agg" or "ipykernel" not in __import__("sys").modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, folder: str | Path, name: str) -> Path:
    """`fig` as `folder/name.png`, written atomically; in a run folder (`folder` is its figures/), recorded as
    bertpeft's, so that a figure deleted or edited later is drawn again."""
    import io

    path = Path(folder) / f"{name}.png"
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    run = path.parent.parent
    if manifest_path(run).is_file():
        write(run, path, buffer.getvalue())
    else:
        atomic_write_bytes(path, buffer.getvalue())
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


def plot_training_curves(results: list[Result]):
    """Training loss (left) and validation accuracy during training (right) against the step, one line per trained
    configuration and seed; configurations without training steps (none, embeddings+logreg) are named in the title
    instead of drawn."""
    plt = _plt()
    fig, (loss_ax, accuracy_ax) = plt.subplots(1, 2, figsize=(11, 3.8))
    untrained = []
    for i, result in enumerate(sorted(results, key=lambda r: (configuration_rank(r.config), r.seed))):
        label = result.config if len(results) == len({r.config for r in results}) else result.name
        curve = result.loss_curve or []
        if not curve:
            untrained.append(label)
            continue
        loss_ax.plot([p["step"] for p in curve], [p["loss"] for p in curve], color=f"C{i}", label=label)
        evals = [p for p in result.eval_curve or [] if p.get("split", "validation") == "validation"]
        if evals:
            accuracy_ax.plot(
                [p["step"] for p in evals], [p["accuracy"] for p in evals], "o-", color=f"C{i}", label=label
            )
    note = f" ({', '.join(untrained)}: no training steps)" if untrained else ""
    loss_ax.set(xlabel="step", ylabel="training loss", title="Training loss" + note)
    accuracy_ax.set(xlabel="step", ylabel="accuracy", title="Validation accuracy during training")
    for ax in (loss_ax, accuracy_ax):
        if ax.lines:
            ax.legend(fontsize="small")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_configurations(layers: int = 12):
    """The six configurations as pictures of the model: the embeddings, the encoder layers, the pooler and the
    classifier head, coloured by what trains; LoRA's small B·A matrices drawn beside each frozen layer."""
    from matplotlib.patches import FancyBboxPatch

    plt = _plt()
    rows = ["embeddings", "layer 1", "⋮", f"layer {layers - 1}", f"layer {layers}", "pooler", "classifier"]
    numbered = [f"layer {layers - i}" for i in range(2)]  # the two layers nearest the head, top first

    def trainable(name: str) -> set[str]:  # the parts `name` trains, by the family of its registry entry
        known = entry(name)
        if known.family == "full":
            return set(rows)
        if known.family == "none":
            return set()
        return {"classifier", *numbered[: known.layers or 0]}

    frozen, trained = "#C9D3E0", "#DD8452"
    fig, ax = plt.subplots(figsize=(11, 4.2))
    for column, name in enumerate(CONFIGURATIONS):
        x = column * 1.8
        for row, part in enumerate(rows):
            y = row * 0.6
            if part == "⋮":
                ax.text(x + 0.55, y + 0.22, "⋮", ha="center", va="center", fontsize=14)
                continue
            colour = trained if part in trainable(name) else frozen
            ax.add_patch(FancyBboxPatch((x, y), 1.1, 0.45, boxstyle="round,pad=0.02", color=colour))
            ax.text(x + 0.55, y + 0.22, part, ha="center", va="center", fontsize=8)
            if entry(name).low_rank and part.startswith("layer"):  # LoRA: B·A beside each frozen layer
                ax.add_patch(FancyBboxPatch((x + 1.18, y + 0.05), 0.32, 0.35, boxstyle="round,pad=0.02", color=trained))
                ax.text(x + 1.34, y + 0.22, "B·A", ha="center", va="center", fontsize=7)
        ax.text(x + 0.55, len(rows) * 0.6 + 0.05, name, ha="center", va="bottom", fontsize=11, weight="bold")
    ax.add_patch(FancyBboxPatch((0, -0.75), 0.3, 0.3, boxstyle="round,pad=0.02", color=trained))
    ax.text(0.4, -0.6, "trains", va="center", fontsize=9)
    ax.add_patch(FancyBboxPatch((1.5, -0.75), 0.3, 0.3, boxstyle="round,pad=0.02", color=frozen))
    ax.text(1.9, -0.6, "frozen (pretrained weights kept as they are)", va="center", fontsize=9)
    ax.set_xlim(-0.1, len(CONFIGURATIONS) * 1.8)
    ax.set_ylim(-0.9, len(rows) * 0.6 + 0.5)
    ax.axis("off")
    ax.set_title("What trains in each configuration (bottom: input side; top: the classifier head)", fontsize=10)
    return fig


def plot_lora(d: int = 768, r: int = 4):
    """LoRA on one weight matrix: the frozen W (d x d) and the trainable pair A (r x d), B (d x r) whose product is
    added to W's output, scaled by alpha / r."""
    from matplotlib.patches import FancyArrowPatch, Rectangle

    plt = _plt()
    fig, ax = plt.subplots(figsize=(9.5, 3.6))
    frozen, trained = "#C9D3E0", "#DD8452"
    ax.add_patch(Rectangle((0, 0), 2.4, 2.4, color=frozen))
    ax.text(1.2, 1.2, f"W\n{d} × {d}\nfrozen", ha="center", va="center", fontsize=10)
    ax.add_patch(Rectangle((3.2, 1.7), 2.4, 0.35, color=trained))
    ax.text(5.7, 1.87, f"A: {r} × {d}\n(random at the start)", ha="left", va="center", fontsize=8)
    ax.add_patch(Rectangle((3.2, 0.0), 0.35, 1.5, color=trained))
    ax.text(3.7, 0.75, f"B: {d} × {r}\n(zeros at the start)", ha="left", va="center", fontsize=8)
    ax.text(1.2, 2.75, "x (a token's vector)", ha="center", fontsize=9)
    ax.text(4.4, 2.75, "x", ha="center", fontsize=9)
    ax.add_patch(FancyArrowPatch((1.2, 2.7), (1.2, 2.45), arrowstyle="->", mutation_scale=10))
    ax.add_patch(FancyArrowPatch((4.4, 2.7), (4.4, 2.1), arrowstyle="->", mutation_scale=10))
    ax.text(
        7.6,
        1.2,
        "h = W x + (alpha / r) · B A x\n\n"
        f"trainable: {2 * d * r:,} numbers\ninstead of {d * d:,}\n\n"
        "merging: W ← W + (alpha / r) · B A,\nthe same h with no extra cost",
        va="center",
        fontsize=9,
    )
    ax.set_xlim(-0.2, 11)
    ax.set_ylim(-0.3, 3.0)
    ax.axis("off")
    ax.set_title(f"LoRA on one projection (r = {r})", fontsize=10)
    return fig


def _per_configuration(table, column: str):
    """Mean and standard deviation (0 with a single seed) of `column` per configuration, in table order."""
    grouped = table.groupby("config", sort=False)[column]
    return list(grouped.groups), grouped.mean().to_numpy(dtype=float), grouped.std().fillna(0).to_numpy(dtype=float)


def _seeds_note(table) -> str:
    seeds = table.groupby("config")["seed"].count().max() if len(table) else 0
    return f" (mean ± sd over {seeds} seeds)" if seeds > 1 else ""


def plot_metrics_per_configuration(table):
    """Experiment A's figure: accuracy, precision, recall and F1 per configuration, grouped bars (error bars: the
    spread over seeds when there are several)."""
    import numpy as np

    plt = _plt()
    metrics = ("accuracy", "precision", "recall", "f1")
    names = list(table.groupby("config", sort=False).groups)
    fig, ax = plt.subplots(figsize=(max(7, 1.3 * len(names)), 4))
    width = 0.8 / len(metrics)
    x = np.arange(len(names))
    for i, metric in enumerate(metrics):
        _, mean, std = _per_configuration(table, metric)
        ax.bar(x + (i - 1.5) * width, mean, width, yerr=std if std.any() else None, capsize=2, label=metric)
    ax.set_xticks(x, names)
    ax.set_ylim(0, 1.18)
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.axhline(0.5, color="grey", linewidth=0.8, linestyle=":")
    ax.set(ylabel="score on the test reviews", title="Metrics per configuration" + _seeds_note(table))
    ax.legend(ncol=4, loc="upper center", fontsize="small", frameon=False)
    return fig


# adjustText's steps per figure: a fixed count (its default is one second of work, so a busy machine drew other
# figures than an idle one)
ITERATIONS = 500


def label_points(ax, names, xs, ys) -> list:
    """Each point's name beside it, moved by adjustText until no two labels (and no label and point) overlap; a thin
    line joins a label moved far to its point. Call it once the axes' scales and limits are set."""
    from adjustText import adjust_text

    texts = [ax.text(x, y, str(name), fontsize="small") for name, x, y in zip(names, xs, ys, strict=True)]
    if texts:
        adjust_text(
            texts,
            x=list(xs),
            y=list(ys),
            ax=ax,
            expand=(1.1, 1.3),
            iter_lim=ITERATIONS,
            arrowprops=dict(arrowstyle="-", color="0.6", lw=0.5),
        )
    return texts


def plot_accuracy_vs_parameters(table):
    """Accuracy against trainable parameters (log scale; `none`, with 0, sits on the linear part at the left)."""
    plt = _plt()
    names, accuracy, spread = _per_configuration(table, "accuracy")
    _, params, _ = _per_configuration(table, "trainable_params")
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.errorbar(params, accuracy, yerr=spread if spread.any() else None, fmt="o", color="#4C72B0", capsize=3)
    ax.margins(y=0.12)
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlim(left=-0.5, right=max(params.max() * 5, 10))
    ax.set(
        xlabel="trainable parameters (log scale)",
        ylabel="test accuracy",
        title="Accuracy against trainable parameters" + _seeds_note(table),
    )
    ax.grid(alpha=0.3)
    label_points(ax, names, params, accuracy)
    return fig


def plot_training_time(table):
    """Experiment A's second figure: training time per configuration, with the seconds written on each bar."""
    plt = _plt()
    names, seconds, spread = _per_configuration(table, "train_seconds")
    fig, ax = plt.subplots(figsize=(max(7, 1.1 * len(names)), 4))
    bars = ax.bar(names, seconds, yerr=spread if spread.any() else None, capsize=3, color="#DD8452")
    ax.bar_label(bars, labels=[f"{s:.0f}s" if s >= 10 else f"{s:.1f}s" for s in seconds], padding=2, fontsize="small")
    device = table["device"].iloc[0] if "device" in table else None
    where = f" on {device}" if device else ""
    ax.set(ylabel="training seconds", title=f"Training time per configuration{where}" + _seeds_note(table))
    ax.margins(y=0.15)
    return fig


def plot_step_time_relative(table, reference: str = REFERENCE):
    """Time per training step relative to `reference` (1.0, dotted): a bar at the median over seeds, one dot per
    seed, and a whisker from the 10th to the 90th percentile of the configuration's steps (batches of different
    lengths take different times). See `report.step_time_relative`."""
    import numpy as np

    plt = _plt()
    relative = step_time_relative(table, reference)
    fig, ax = plt.subplots(figsize=(max(7, 1.1 * len(relative)), 4))
    if relative.empty:
        ax.text(0.5, 0.5, f"no timed {reference} in this run", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    x = np.arange(len(relative))
    ratio = relative["ratio"].to_numpy()
    whiskers = np.array([ratio - relative["p10"].to_numpy(), relative["p90"].to_numpy() - ratio]).clip(min=0)
    ax.bar(x, ratio, color="#55A868", alpha=0.8, label="median over seeds")
    ax.errorbar(x, ratio, yerr=whiskers, fmt="none", ecolor="#333333", capsize=4, label="10th-90th percentile step")
    name = {config: i for i, config in enumerate(relative["config"])}
    timed = table.dropna(subset=["step_seconds_median"])
    base = timed[timed["config"] == reference].set_index("seed")["step_seconds_median"]
    for config, seed, median in zip(timed["config"], timed["seed"], timed["step_seconds_median"]):
        if config in name and seed in base.index:
            ax.plot(name[config], median / base[seed], "o", color="black", markersize=3)
    ax.plot([], [], "o", color="black", markersize=3, label="one seed")
    for i, r in enumerate(ratio):
        ax.text(i, 0.03, f"{r:.2f}x", ha="center", va="bottom", fontsize="small")
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xticks(x, relative["config"])
    ax.set(
        ylabel=f"time per step / {reference}'s",
        title=f"Time per training step relative to {reference}"
        + (f" ({relative['seeds'].max()} seeds)" if relative["seeds"].max() > 1 else ""),
    )
    ax.set_ylim(0, max(1.45, float(relative["p90"].max()) * 1.2))
    ax.legend(loc="upper center", ncol=3, fontsize="small", frameon=False)
    return fig


def plot_loss_curves(results: list[Result]):
    """Training loss against the step, one line per trained configuration (one thin line per seed)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))

    colours = {}
    for result in sorted(results, key=lambda r: (configuration_rank(r.config), r.seed)):
        curve = result.loss_curve or []
        if not curve:
            continue
        name = result.config
        first = name not in colours
        colours.setdefault(name, f"C{len(colours)}")
        ax.plot(
            [p["step"] for p in curve],
            [p["loss"] for p in curve],
            color=colours[name],
            linewidth=1.5 if first else 0.8,
            alpha=1 if first else 0.6,
            label=name if first else None,
        )
    ax.set(xlabel="step", ylabel="training loss", title="Training loss per configuration")
    if colours:
        ax.legend(fontsize="small")
    else:
        ax.text(0.5, 0.5, "no trained configuration", ha="center", va="center", transform=ax.transAxes)
    return fig


def plot_confusion_matrices(results: list[Result]):
    """One confusion matrix per configuration, its seeds pooled: each row is a true label, each cell the share of
    that label's test reviews predicted as the column's label (rows sum to 1), with the count of reviews."""
    import numpy as np

    plt = _plt()
    by_config: dict[str, list[Result]] = {}
    for result in sorted(results, key=lambda r: (configuration_rank(r.config), r.seed)):
        by_config.setdefault(result.config, []).append(result)
    n = max(len(by_config), 1)
    columns = min(n, 3)
    rows = -(-n // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.0 * rows), squeeze=False)
    for ax in axes.flat[len(by_config) :]:
        ax.axis("off")
    for ax, (name, group) in zip(axes.flat, by_config.items(), strict=False):
        k = int(group[0].num_labels)
        labels = [group[0].label(i) for i in range(k)]
        counts = confusion_counts(group)
        shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        ax.imshow(shares, vmin=0, vmax=1, cmap="Blues")
        for i in range(k):
            for j in range(k):
                ax.text(
                    j, i, f"{shares[i, j]:.2f}\n({counts[i, j]:,})", ha="center", va="center", fontsize="small",
                    color="white" if shares[i, j] > 0.6 else "black",
                )  # fmt: skip
        seeds = f", {len(group)} seeds" if len(group) > 1 else ""
        ax.set_xticks(range(k), labels, fontsize="small")
        ax.set_yticks(range(k), labels, fontsize="small")
        ax.set(title=f"{name}{seeds}", xlabel="predicted", ylabel="true label")
    fig.suptitle("Confusion matrices on the test reviews (share of each true label)")
    fig.tight_layout()
    return fig


def accuracy_bars(table):
    """Per configuration (table order): mean accuracy and the half-widths of its 95% interval below and above. With
    several seeds, the t-interval of the mean over seeds; with one, the Wilson interval over the test reviews."""
    import numpy as np

    names, means, low, high = [], [], [], []
    for name, group in table.groupby("config", sort=False):
        mean, lower, upper, _ = accuracy_with_interval(group)
        names.append(name)
        means.append(mean)
        low.append(mean - lower if lower is not None else 0.0)
        high.append(upper - mean if upper is not None else 0.0)
    return names, np.array(means), np.array([low, high])


def plot_accuracy_vs_training_time(table):
    """What Experiment A weighed: test accuracy (95% interval) against training time (the optimizer steps alone;
    spread over seeds when there are several), one point per trained configuration."""
    plt = _plt()
    trained = table[table["config"].map(trains).astype(bool)]
    names, accuracy, interval = accuracy_bars(trained)
    _, seconds, spread = _per_configuration(trained, "train_seconds")
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.errorbar(
        seconds,
        accuracy,
        xerr=spread if spread.any() else None,
        yerr=interval,
        fmt="o",
        color="#4C72B0",
        capsize=3,
        label="accuracy, 95% interval",
    )
    ax.set(
        xlabel="training time, seconds (training loop only)",
        ylabel="test accuracy",
        title="Accuracy against training time" + (" (time: mean ± sd over seeds)" if _seeds_note(trained) else ""),
    )
    ax.set_xlim(left=0, right=max(seconds.max() * 1.25, 1))
    ax.legend(loc="lower right", fontsize="small")
    ax.grid(alpha=0.3)
    label_points(ax, names, seconds, accuracy)
    return fig
