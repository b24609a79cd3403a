"""The parameter-efficient methods compared (notebook 06): per method its trainable parameters, accuracy with a 95%
interval, time per training step relative to full fine-tuning and peak memory, from the run's result JSONs; its
adapter on disk and the inference cost of the adapter left on the base model against the merged model, measured
here; the Pareto fronts of accuracy against parameters and against step time; and the findings in words."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from .config import ADAPTER, HEAD, METHODS, PROBE, entry, lora_rank, uses_peft
from .export import (
    UNMERGEABLE,
    base_model_source,
    export_adapter,
    find_trained,
    held_out_reviews,
    load_adapter_on_base,
    load_merged,
    review_logits,
)
from .plots import _plt, label_points
from .report import accuracy_with_interval, paired_words, step_time_relative


def is_method(name: str) -> bool:
    """A configuration beyond the six of Experiment A: LoRA at another rank, BitFit, another PEFT method or the
    embeddings + logistic regression baseline."""
    return name in METHODS or name == PROBE or lora_rank(name) is not None


def compared_here(configurations) -> bool:
    """Whether a run of `configurations` has methods to compare (notebook 06 runs only then)."""
    return any(is_method(c) for c in configurations)


def method_summary_table(table):
    """One row per configuration: seeds, trainable parameters (and the share of the model), mean accuracy with its
    95% interval (over seeds and the test reviews with several seeds, else over the test reviews), the median time per training step relative
    to full fine-tuning's with the same seed (None without a timed `full`), the median peak memory and the median
    training seconds (the optimizer steps; for the embeddings baseline, embedding the reviews and fitting)."""
    import pandas as pd

    relative = step_time_relative(table).set_index("config") if "step_seconds_median" in table else pd.DataFrame()
    rows = []
    for name, group in table.groupby("config", sort=False):
        mean, low, high, over = accuracy_with_interval(group)
        total = group["total_params"].iloc[0] if "total_params" in group else None
        rows.append(
            {
                "config": name,
                "seeds": len(group),
                "trainable_params": int(group["trainable_params"].iloc[0]),
                "trainable_percent": 100.0 * group["trainable_params"].iloc[0] / total if total else None,
                "accuracy": mean,
                "accuracy_low": low,
                "accuracy_high": high,
                "interval": over,
                "learning_rate": rate_text(group),
                "step_vs_full": float(relative.at[name, "ratio"]) if name in relative.index else None,
                "peak_memory_mb": float(group["peak_memory_mb"].median()) if "peak_memory_mb" in group else None,
                "train_seconds": float(group["train_seconds"].median()) if "train_seconds" in group else None,
            }
        )
    return pd.DataFrame(rows)


def rate_text(group) -> str | None:
    """The rate a configuration trained at, and where it came from: "1e-03 (validation)" when a search chose it on
    the validation reviews, "1e-03 (default)" when it is the registry's; None for no rate (`none`, the
    embeddings baseline)."""
    rates = sorted({float(r) for r in group["learning_rate"].dropna()}) if "learning_rate" in group else []
    if not rates:
        return None
    tuned = "learning_rate_tuned_with_seed" in group and group["learning_rate_tuned_with_seed"].notna().any()
    return f"{', '.join(f'{r:.0e}' for r in rates)} ({'validation' if tuned else 'default'})"


def budget_line(table) -> str | None:
    """How many trainings the comparison took and their training loops' time, rate searches included."""
    if "trainings" not in table or not table["trainings"].sum():
        return None
    searched = int(table["learning_rate_tuned_with_seed"].notna().groupby(table["config"]).any().sum())
    minutes = table["search_train_seconds"].fillna(0).sum() / 60
    chosen = f", the rates of {searched} chosen on the validation reviews before the test reviews were read"
    return (
        f"- Budget: {int(table['trainings'].sum())} trainings for {table['config'].nunique()} configurations over "
        f"{table['seed'].nunique()} seed(s)"
        + (chosen if searched else "")
        + f"; {minutes:.1f} min of training loops in all (on {table['device'].iloc[0]})."
    )


def pareto_front(summary, cost: str) -> list[str]:
    """The configurations no other beats on both counts: at most its `cost` and a higher accuracy, or less cost and
    at least its accuracy. In increasing cost."""
    rows = summary.dropna(subset=[cost, "accuracy"])
    front = []
    for _, row in rows.iterrows():
        beaten = (
            (rows[cost] <= row[cost]) & (rows["accuracy"] >= row["accuracy"])
            & ((rows[cost] < row[cost]) | (rows["accuracy"] > row["accuracy"]))
        )  # fmt: skip
        if not beaten.any():
            front.append((row[cost], row["config"]))
    return [name for _, name in sorted(front)]


def plot_pareto(summary, cost: str, xlabel: str, title: str, log: bool = False):
    """Accuracy (95% interval) against `cost`, one point per configuration, the Pareto front joined by a line and
    its points filled; the others hollow."""

    plt = _plt()
    rows = summary.dropna(subset=[cost, "accuracy"]).sort_values(cost)
    front = pareto_front(rows, cost)
    fig, ax = plt.subplots(figsize=(8, 4.8))
    if rows.empty:
        ax.text(0.5, 0.5, f"no {xlabel} in this run", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    low = (rows["accuracy"] - rows["accuracy_low"]).fillna(0).clip(lower=0)
    high = (rows["accuracy_high"] - rows["accuracy"]).fillna(0).clip(lower=0)
    on = rows["config"].isin(front).to_numpy()
    for mask, style, label in (
        (on, "o", "on the Pareto front"),
        (~on, "o", "off the front: another is as good for less"),
    ):
        if mask.any():
            ax.errorbar(
                rows[cost][mask], rows["accuracy"][mask], yerr=[low[mask], high[mask]], fmt=style, capsize=3,
                color="#4C72B0", mfc="#4C72B0" if mask is on else "white", label=label,
            )  # fmt: skip
    line = rows.set_index("config").loc[front]
    ax.plot(line[cost], line["accuracy"], color="#4C72B0", linewidth=1, alpha=0.6)
    if log:
        ax.set_xscale("log")
    ax.set(xlabel=xlabel, ylabel="test accuracy (95% interval)", title=title)
    ax.legend(loc="lower right", fontsize="small")
    ax.grid(alpha=0.3)
    label_points(ax, rows["config"].tolist(), rows[cost].to_numpy(dtype=float), rows["accuracy"].to_numpy(dtype=float))
    return fig


def plot_peak_memory(summary):
    """Peak memory of each configuration's training (median over seeds), as bars."""

    plt = _plt()
    rows = summary.dropna(subset=["peak_memory_mb"])
    fig, ax = plt.subplots(figsize=(max(7, 0.6 * len(rows)), 4))
    bars = ax.bar(rows["config"], rows["peak_memory_mb"], color="#8172B2")
    ax.bar_label(bars, labels=[f"{m:,.0f}" for m in rows["peak_memory_mb"]], padding=2, fontsize="x-small")
    ax.set(ylabel="peak memory, MB", title="Peak memory during training (median over seeds)")
    ax.tick_params(axis="x", labelrotation=45)
    ax.margins(y=0.12)
    fig.tight_layout()
    return fig


def export_and_time(run_dir: str | Path, configurations, n_reviews: int = 128, repeats: int = 3, progress=print):
    """Each PEFT configuration of the run exported (`export_adapter`, its first seed: adapter saved, reloaded and
    merged where the method can, logits proven equal), then timed on `n_reviews` test reviews: the adapter left on
    a freshly loaded base model against the merged model (median of `repeats` passes each, interleaved). One row per
    configuration: adapter MB on disk, merged or why not, the largest logit difference, the seconds of each pass."""
    import pandas as pd

    rows = []
    for name in [c for c in configurations if uses_peft(c)]:
        progress(f"exporting {name}", flush=True)
        v = export_adapter(run_dir, name, n_reviews=16)
        trained = find_trained(run_dir, name)
        test, tokenizer = held_out_reviews(trained, n_reviews)
        texts, length = list(test["text"]), trained.config.max_length
        base = base_model_source(trained.config.model)
        unmerged = load_adapter_on_base(v["adapter_dir"], trained.num_labels, trained.id2label, base)
        merged = load_merged(v["merged_dir"])[0] if v.get("merged_dir") else None
        models = {"unmerged": unmerged, **({"merged": merged} if merged is not None else {})}
        for model in models.values():
            review_logits(model, tokenizer, texts[:16], length)  # warm-up
        seconds = {key: [] for key in models}
        for _ in range(repeats):  # interleaved: a slower moment of the machine hits both alike
            for key, model in models.items():
                start = time.perf_counter()
                review_logits(model, tokenizer, texts, length)
                seconds[key].append(time.perf_counter() - start)
        rows.append(
            {
                "config": name,
                "adapter_mb": v["adapter_mb"],
                "merged": name not in UNMERGEABLE,
                "max_abs_diff": max(v["max_abs_diff"].values()),
                "unmerged_seconds": statistics.median(seconds["unmerged"]),
                "merged_seconds": statistics.median(seconds["merged"]) if "merged" in seconds else None,
                "reviews": len(texts),
            }
        )
    table = pd.DataFrame(rows)
    if len(table):
        table["merged_over_unmerged"] = table["merged_seconds"] / table["unmerged_seconds"]
    return table


def size_text(mb: float) -> str:
    """MB for people: `1.23 MB`, or `12 KB` below 1 MB."""
    return f"{mb:.2f} MB" if mb >= 1 else f"{mb * 1024:,.0f} KB"


def methods_takeaways(summary, exports=None, pairs=None, table=None) -> str:
    """What notebook 06 found, in Markdown, worded from the method table, the exports and the paired tests against
    LoRA (`report.paired_tests(..., reference=ADAPTER)`), and from the results `table` what the comparison cost."""
    import pandas as pd

    if summary.empty:
        return "No results yet."
    trained = summary[summary["trainable_params"] > 0]
    best = trained.loc[trained["accuracy"].idxmax()]
    known = trained.dropna(subset=["accuracy_low", "accuracy_high"])
    lines = [
        f"- Best accuracy: `{best['config']}` with {best['accuracy']:.3f}"
        + (
            f" (95% interval {best['accuracy_low']:.3f} to {best['accuracy_high']:.3f}, {best['interval']})"
            if pd.notna(best["accuracy_low"])
            else ""
        )
        + f", training {best['trainable_params']:,} parameters."
    ]
    if pd.notna(best["accuracy_low"]):
        overlap = known[(known["accuracy_high"] >= best["accuracy_low"]) & (known["config"] != best["config"])]
        # an interval far wider than the usual one overlaps everything: its seeds disagree, it settles nothing
        width = known["accuracy_high"] - known["accuracy_low"]
        wide = overlap[width.loc[overlap.index] > 2 * width.median()]
        level = overlap.drop(wide.index)
        if len(level):
            smallest = level.loc[level["trainable_params"].idxmin()]
            fewer = smallest["trainable_params"] < best["trainable_params"]
            lines.append(
                f"- {len(level)} other configuration(s) cannot be told apart from it (their intervals overlap): "
                + ", ".join(f"`{c}`" for c in level["config"])
                + "."
                + (
                    f" The smallest of them, `{smallest['config']}`, trains {smallest['trainable_params']:,} "
                    f"parameters, {best['trainable_params'] / max(smallest['trainable_params'], 1):,.1f}x fewer."
                    if fewer
                    else ""
                )
            )
        for _, r in wide.iterrows():
            lines.append(
                f"- `{r['config']}` ({r['accuracy']:.3f}) overlaps it only through its own wide interval "
                f"({r['accuracy_low']:.3f} to {r['accuracy_high']:.3f}, more than twice the median width): its seeds "
                "disagree too much to tell."
            )
    front = pareto_front(trained, "trainable_params")
    lines.append("- Pareto front, accuracy against trainable parameters: " + " → ".join(f"`{c}`" for c in front) + ".")
    timed = trained.dropna(subset=["step_vs_full"])
    if len(timed):
        front = pareto_front(timed, "step_vs_full")
        quickest, slowest = timed.loc[timed["step_vs_full"].idxmin()], timed.loc[timed["step_vs_full"].idxmax()]
        lines.append(
            "- Pareto front, accuracy against time per step: " + " → ".join(f"`{c}`" for c in front) + f". Steps "
            f"range from {quickest['step_vs_full']:.2f}x full's (`{quickest['config']}`) to "
            f"{slowest['step_vs_full']:.2f}x (`{slowest['config']}`)."
        )
    lines += probe_takeaway(trained)
    lines += rank_lines(trained)
    if exports is not None and len(exports):
        merged = exports.dropna(subset=["merged_seconds"])
        if len(merged):
            lines.append(
                f"- Inference on {int(exports['reviews'].iloc[0])} test reviews: a merged model takes "
                f"{merged['merged_over_unmerged'].min():.2f}x to {merged['merged_over_unmerged'].max():.2f}x the "
                f"time of its adapter left on the base model; every merge reproduces the adapter's logits within "
                f"{merged['max_abs_diff'].max():.1e}."
            )
        refused = exports.loc[~exports["merged"], "config"].tolist()
        if refused:
            lines.append(
                f"- {', '.join(f'`{c}`' for c in refused)} cannot be merged: the trained vectors are extra inputs of "
                "the attention, so the base model runs them on every call."
            )
        smallest = exports.loc[exports["adapter_mb"].idxmin()]
        largest = exports.loc[exports["adapter_mb"].idxmax()]
        lines.append(
            f"- Adapters on disk (with the trained head): from {size_text(smallest['adapter_mb'])} "
            f"(`{smallest['config']}`) to {size_text(largest['adapter_mb'])} (`{largest['config']}`)."
        )
    if pairs is not None and len(pairs):
        lines.append(paired_words(pairs, ADAPTER, "LoRA"))
    budget = budget_line(table) if table is not None else None
    if budget:
        lines.append(budget)
    return "\n".join(lines)


def rank_lines(trained) -> list[str]:
    """LoRA's rank, one line per way alpha follows it (scaled along, fixed, rsLoRA), each with its accuracies:
    where the lines part, the scale of the update matters, not only its rank."""
    sweeps = {
        "alpha scaled along (alpha / r fixed)": lambda e: (
            e.base == ADAPTER and e.alpha == "scaled" or e.name == ADAPTER
        ),
        "alpha fixed": lambda e: e.base == ADAPTER and isinstance(e.alpha, float),
        "rsLoRA (alpha / sqrt(r))": lambda e: "rslora" in (e.name, e.base),
    }
    lines = []
    for words, member in sweeps.items():
        rows = trained[[entry(c) is not None and bool(member(entry(c))) for c in trained["config"]]]
        if len(rows) > 1:
            lines.append(
                f"- LoRA's rank, {words}: "
                + ", ".join(
                    f"`{r['config']}` {r['accuracy']:.3f} ({r['trainable_params']:,})" for _, r in rows.iterrows()
                )
                + " (accuracy, trainable parameters)."
            )
    return lines


def probe_takeaway(trained) -> list[str]:
    """The embeddings + logistic regression baseline against the head trained by gradient descent, in one line
    (none without both in the table)."""
    rows = trained.set_index("config")
    if PROBE not in rows.index or HEAD not in rows.index:
        return []
    probe, head = rows.loc[PROBE], rows.loc[HEAD]
    than = (
        "above" if probe["accuracy"] > head["accuracy"] else "below" if probe["accuracy"] < head["accuracy"] else "at"
    )
    seconds = (
        f" in {probe['train_seconds']:.0f} s of training (embedding the reviews and fitting) against head's "
        f"{head['train_seconds']:.0f} s of optimizer steps"
        if probe.get("train_seconds") is not None and head.get("train_seconds") is not None
        else ""
    )
    return [
        f"- `{PROBE}`, a logistic regression on the frozen encoder's mean-pooled embeddings, reaches "
        f"{probe['accuracy']:.3f} ({than} `head`'s {head['accuracy']:.3f}, which trains a classifier on the [CLS] "
        f"pooler by gradient descent){seconds}."
    ]
