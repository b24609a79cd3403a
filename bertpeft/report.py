"""The results table of a run, computed from its per-configuration JSONs only (never by retraining)."""

from __future__ import annotations

from pathlib import Path

from .config import ADAPTER, PROBE, REFERENCE, ConfigError, RunConfig, entry
from .configurations import display_order, trains
from .layout import RunDir, read_results
from .manifest import write
from .metrics import METRICS
from .result import Result
from .stats import holm, mean_and_interval, paired_difference, pooled_accuracy

COLUMNS = (
    "config",
    "seed",
    "trainable_params",
    "total_params",
    "trainable_percent",
    *METRICS,
    "accuracy_low",
    "accuracy_high",
    "f1_low",
    "f1_high",
    "benchmark_accuracy",
    "train_seconds",
    "train_samples_per_second",
    "step_seconds_median",
    "step_seconds_p10",
    "step_seconds_p90",
    "eval_seconds",
    "setup_seconds",
    "peak_memory_mb",
    "learning_rate",
    "learning_rate_tuned_with_seed",
    "trainings",
    "search_train_seconds",
    "numeric_precision",
    "model",
    "profile",
    "device",
)
# What the notebook shows; results.csv keeps every column.
SHOWN = (
    "config",
    "seed",
    "trainable_params",
    *METRICS,
    "benchmark_accuracy",
    "train_seconds",
    "train_samples_per_second",
    "peak_memory_mb",
)
SPREAD = (*METRICS, "train_seconds", "train_samples_per_second")


def configuration_rank(name: str) -> tuple[int, int, int]:
    """Sort key: none, embeddings+logreg, head, head+1, head+2, ..., bitfit, lora-rN and lora by rank, the other PEFT
    methods, full (increasing complexity, as in Experiment A): the registry's `display_order`, `lora` at the
    setting's default rank."""
    return display_order(name, RunConfig.lora_r)


def device_text(device: dict | None) -> str | None:
    """`{"type": "cpu", "count": 2, ...}` -> "CPU (2 cores)"; a GPU by its name."""
    if not device:
        return None
    if device.get("type") == "cpu":
        return f"CPU ({device.get('count')} cores)"
    if device.get("type") == "mps":
        return "Apple MPS"
    return str(device.get("name") or device.get("type"))


def results_table(run_dir: str | Path):
    """One row per configuration and seed, in order of complexity, from `<run_dir>/results/*.json`."""
    return table_of(read_results(Path(run_dir)))


# Per row of a results table: 1 or 0 for each test review, in order (whether the run got it right); what the
# intervals over seeds and reviews resample. Not written to results.csv (the result JSONs hold the predictions).
CORRECT = "test_correct"


def search_costs(result: Result) -> dict:
    """What a result cost beyond its own training: `trainings` (the trials of its rate search, or 1; 0 for `none`)
    and `search_train_seconds` (their training loops together; its own `train_seconds` without a search)."""
    grid = result.learning_rate_grid or []
    if grid:
        return {"trainings": len(grid), "search_train_seconds": sum(g.get("train_seconds") or 0.0 for g in grid)}
    return {"trainings": int(trains(result.config)), "search_train_seconds": result.train_seconds}


def table_of(results: list[Result]):
    """The results table of `results`, in order of complexity."""
    import pandas as pd

    rows = [
        {
            **{c: getattr(result, c, None) for c in COLUMNS},
            **search_costs(result),
            "device": device_text(result.device),
            CORRECT: result.correct,
        }
        for result in results
    ]
    table = pd.DataFrame(rows, columns=[*COLUMNS, CORRECT])
    if table.empty:
        return table
    order = sorted(range(len(table)), key=lambda i: (configuration_rank(table.at[i, "config"]), table.at[i, "seed"]))
    return table.iloc[order].reset_index(drop=True)


def confusion_counts(results: list[Result]):
    """The confusion matrix of `results` (the seeds of one configuration) pooled: counts[true, predicted] over
    every seed's test reviews."""
    import numpy as np

    k = int(results[0].num_labels)
    counts = np.zeros((k, k), dtype=int)
    for result in results:
        np.add.at(counts, (np.asarray(result.test_labels), np.asarray(result.test_predictions)), 1)
    return counts


def write_results_csv(run_dir: str | Path):
    """`results_table` written (atomically) to `<run_dir>/results.csv`; returns the table."""
    table = results_table(run_dir)
    write(RunDir(run_dir).root, RunDir(run_dir).results_csv, table.drop(columns=[CORRECT]).to_csv(index=False))
    return table


def summary_over_seeds(table, formatted: bool = False):
    """Mean, standard deviation and number of seeds of each metric and timing, per configuration.

    `formatted` gives one readable column per quantity, "mean ± sd" (the mean alone with a single seed)."""
    import pandas as pd

    if table.empty:
        return pd.DataFrame()
    grouped = table.groupby("config", sort=False)
    summary = grouped[list(SPREAD)].agg(["mean", "std"])
    summary.columns = [f"{metric}_{stat}" for metric, stat in summary.columns]
    summary.insert(0, "seeds", grouped["seed"].count())
    summary.insert(1, "trainable_params", grouped["trainable_params"].first())
    summary = summary.reset_index()
    if not formatted:
        return summary
    shown = summary[["config", "seeds", "trainable_params"]].copy()
    for metric in SPREAD:
        digits = 4 if metric in METRICS else 1
        mean, std = summary[f"{metric}_mean"], summary[f"{metric}_std"]
        shown[metric] = [
            f"{m:.{digits}f}" + (f" ± {s:.{digits}f}" if pd.notna(s) else "") if pd.notna(m) else ""
            for m, s in zip(mean, std, strict=True)
        ]
    return shown


def paired_tests(results: list[Result], reference: str = REFERENCE, alpha: float = 0.05):
    """Each configuration against `reference` on the same test reviews, pooled over the seeds both trained with:
    the accuracy difference with a 95% two-level bootstrap interval (seeds, then reviews) and p-value
    (`stats.paired_difference`), and Holm's correction over every configuration compared (`p_holm`); `differs`
    is p_holm < alpha. One row per configuration."""
    import numpy as np
    import pandas as pd

    by_key = {(r.config, r.seed): r for r in results}
    rows = []
    for config in sorted({r.config for r in results} - {reference}, key=configuration_rank):
        seeds = sorted(s for c, s in by_key if c == config and (reference, s) in by_key)
        pairs = [(by_key[config, s].correct, by_key[reference, s].correct) for s in seeds]
        same_reviews = [
            (a, b)
            for s, (a, b) in zip(seeds, pairs, strict=True)
            if a is not None and b is not None and by_key[config, s].test_labels == by_key[reference, s].test_labels
        ]
        if not same_reviews or len({len(a) for a, _ in same_reviews}) > 1:
            continue  # not the same test reviews: no paired test
        a, b = (np.array(side) for side in zip(*same_reviews, strict=True))
        d = paired_difference(a, b)
        rows.append(
            {
                "config": config,
                "seeds": d["runs"],
                "reviews": d["reviews"],
                "accuracy": float(a.mean()),
                f"{reference}_accuracy": float(b.mean()),
                "difference": d["difference"],
                "low": d["low"],
                "high": d["high"],
                "p_value": d["p_value"],
            }
        )
    table = pd.DataFrame(rows)
    if len(table):
        table["p_holm"] = holm(table["p_value"])
        table["differs"] = table["p_holm"] < alpha
    return table


def step_time_relative(table, reference: str = REFERENCE):
    """Per trained configuration: its median time per training step divided by `reference`'s, seed by seed (the
    same seed orders the batches alike). `ratio` is the median over seeds, `ratio_min`/`ratio_max` their range,
    `p10`/`p90` the spread of its steps (10th and 90th percentile, median over seeds) on the same scale. Empty
    when the table has no timed `reference`."""
    import numpy as np
    import pandas as pd

    timed = table.dropna(subset=["step_seconds_median"])
    base = timed[timed["config"] == reference].set_index("seed")["step_seconds_median"]
    rows = []
    for config, group in timed[timed["config"].map(trains).astype(bool)].groupby("config", sort=False):
        paired = group[group["seed"].isin(base.index)]
        if paired.empty:
            continue
        full = base.loc[paired["seed"]].to_numpy(dtype=float)
        ratios = paired["step_seconds_median"].to_numpy(dtype=float) / full
        rows.append(
            {
                "config": config,
                "seeds": len(ratios),
                "ratio": float(np.median(ratios)),
                "ratio_min": float(ratios.min()),
                "ratio_max": float(ratios.max()),
                "p10": float(np.median(paired["step_seconds_p10"].to_numpy(dtype=float) / full)),
                "p90": float(np.median(paired["step_seconds_p90"].to_numpy(dtype=float) / full)),
            }
        )
    return pd.DataFrame(rows, columns=["config", "seeds", "ratio", "ratio_min", "ratio_max", "p10", "p90"])


def training_takeaways(results: list[Result]) -> str:
    """What notebook 02 found, in Markdown, worded from its results: each configuration's test accuracy with its
    95% interval, what it trained and for how long, and whether the independent benchmark agreed."""
    lines = []
    for r in sorted(results, key=lambda r: (configuration_rank(r.config), r.seed)):
        n_test = len(r.test_labels or []) or None
        interval = (
            f" (95% interval {r.accuracy_low:.3f} to {r.accuracy_high:.3f})" if r.accuracy_low is not None else ""
        )
        share = f"{r.trainable_params:,} of {r.total_params:,} parameters ({r.trainable_percent:.2f}%)"
        if r.config == PROBE:
            trained = f"fitted {share} in {r.train_seconds:.1f} s of embedding and fitting (C = {r.probe_c:g})"
        elif r.trainable_params:
            trained = f"trained {share} for {r.train_seconds:.1f} s of training loop" + (
                f" at learning rate {r.learning_rate:.2g}" if r.learning_rate else ""
            )
        else:
            trained = "trained nothing"
        lines.append(
            f"- `{r.config}` (seed {r.seed}): accuracy {r.accuracy:.3f}{interval}"
            + (f" on {n_test:,} test reviews" if n_test else "")
            + f"; {trained}."
        )
    if not lines:
        return "No configuration was trained."
    checked = [r for r in results if r.benchmark_accuracy is not None]
    if checked:
        gap = max(abs(r.accuracy - r.benchmark_accuracy) for r in checked)
        lines.append(
            f"- The independent inference loop reproduces the Trainer's accuracy within {gap:.4f} "
            f"for {'every configuration' if len(checked) > 1 else 'this configuration'}."
        )
    trained = [r for r in results if r.trainable_params]
    if len(trained) > 1:
        best = max(results, key=lambda r: r.accuracy)
        fastest = min(trained, key=lambda r: r.train_seconds)
        lines.append(
            f"- Highest test accuracy: `{best.config}` ({best.accuracy:.3f}); shortest training loop: "
            f"`{fastest.config}` ({fastest.train_seconds:.1f} s). Whether the differences are larger than "
            f"chance is notebook 04's question (intervals over seeds and paired tests)."
        )
    return "\n".join(lines)


def paired_words(pairs, reference: str, words: str) -> str:
    """The paired tests (`paired_tests`) in one Markdown line: which configurations differ from `reference` after
    Holm's correction, by how much, where there is no evidence of a difference, and the smallest difference this
    design resolves (the median half-width of the intervals)."""
    import numpy as np

    def shown(row) -> str:
        return f"`{row['config']}` {row['difference']:+.3f} ({row['low']:+.3f} to {row['high']:+.3f})"

    ordered = pairs.iloc[sorted(range(len(pairs)), key=lambda i: configuration_rank(pairs["config"].iloc[i]))]
    differ = [shown(r) for _, r in ordered.iterrows() if r["differs"]]
    unresolved = [f"`{r['config']}`" for _, r in ordered.iterrows() if not r["differs"]]
    seeds, reviews = int(pairs["seeds"].max()), int(pairs["reviews"].max())
    half = float(np.median((pairs["high"] - pairs["low"]) / 2))
    parts = []
    if differ:
        parts.append(f"differ from `{reference}` by " + ", ".join(differ) + " in accuracy")
    if unresolved:
        parts.append(f"no evidence of a difference from `{reference}` at this size for " + ", ".join(unresolved))
    return (
        f"- Paired against {words} on the same {reviews:,} test reviews, pooled over {seeds} seed(s) (95% intervals "
        f"resampling seeds and reviews; Holm's correction over the {len(pairs)} comparisons, adjusted p < 0.05): "
        + "; ".join(parts)
        + f". Differences smaller than about {half:.3f} are beyond what this design resolves."
    )


def require_results(run_dir: str | Path) -> None:
    """Stop with one line when the run folder holds no result yet, saying what to run first."""
    if not read_results(Path(run_dir)):
        raise ConfigError(
            f"{run_dir} holds no results yet: run notebook 02 with output = {str(run_dir)!r} first (or bertpeft run "
            f"--output {run_dir})"
        )


def accuracy_with_interval(group) -> tuple[float, float | None, float | None, str]:
    """Mean accuracy of a configuration's rows and a 95% interval, and what it is over: with several seeds scored on
    the same test reviews, the two-level bootstrap over seeds and reviews (`stats.pooled_accuracy`); with one, the
    Wilson interval over the test reviews; the t-interval over seeds where the predictions are missing (None when
    there is nothing to resample)."""
    correct = group[CORRECT].tolist() if CORRECT in group else []
    if len(correct) > 1 and all(c is not None for c in correct) and len({len(c) for c in correct}) == 1:
        pooled = pooled_accuracy(correct)
        return pooled["accuracy"], pooled["low"], pooled["high"], f"over {len(correct)} seeds and the test reviews"
    stats = mean_and_interval(group["accuracy"].tolist())
    if stats["low"] is not None:
        return stats["mean"], stats["low"], stats["high"], f"over {stats['n']} seeds"
    if "accuracy_low" in group and group["accuracy_low"].notna().all():
        return stats["mean"], group["accuracy_low"].iloc[0], group["accuracy_high"].iloc[0], "over the test reviews"
    return stats["mean"], None, None, "over the test reviews"


def step_words(table, config: str) -> str | None:
    """', and each step {ratio}x full's (range over seeds)' for `config`, or None when steps were not timed."""
    relative = step_time_relative(table) if "step_seconds_median" in table else None
    if relative is None or relative.empty or config not in set(relative["config"]):
        return None
    row = relative.set_index("config").loc[config]
    spread = f" ({row['ratio_min']:.2f} to {row['ratio_max']:.2f} over seeds)" if row["seeds"] > 1 else ""
    return f", and each step {row['ratio']:.2f}x full's{spread}"


def results_takeaways(table, pairs=None) -> str:
    """What notebook 04 found, in Markdown, worded from the results table (and the paired tests against full): the
    ranking with intervals and whether it is settled, where LoRA sits, and what training time bought."""
    import pandas as pd

    if table.empty:
        return "No results yet."
    summary = {}
    for name, group in table.groupby("config", sort=False):
        mean, low, high, over = accuracy_with_interval(group)
        summary[name] = {
            "accuracy": mean,
            "low": low,
            "high": high,
            "over": over,
            "params": int(group["trainable_params"].iloc[0]),
            "seconds": float(group["train_seconds"].mean()),
        }
    trained = {k: v for k, v in summary.items() if v["params"] > 0}
    ranked = sorted(summary.items(), key=lambda kv: -kv[1]["accuracy"])
    lines = [
        "- Test accuracy, best first: "
        + "; ".join(
            f"`{name}` {s['accuracy']:.3f}"
            + (f" ({s['low']:.3f} to {s['high']:.3f})" if s["low"] is not None and pd.notna(s["low"]) else "")
            for name, s in ranked
        )
        + f". The intervals are 95% intervals {ranked[0][1]['over']}."
    ]
    if pairs is not None and len(pairs):
        lines.append(paired_words(pairs, REFERENCE, "full fine-tuning"))
    if ADAPTER in summary and REFERENCE in summary:
        lora, full = summary[ADAPTER], summary[REFERENCE]
        neighbours = [n for n in summary if entry(n) and entry(n).family in ("head", "layers")]

        def overlap(a, b) -> bool:  # both 95% intervals known and overlapping: the ranking is not settled
            known = all(x is not None and pd.notna(x) for x in (a["low"], a["high"], b["low"], b["high"]))
            return known and a["low"] <= b["high"] and b["low"] <= a["high"]

        within = [f"`{n}`" for n in neighbours if overlap(lora, summary[n])]
        rest = [n for n in neighbours if f"`{n}`" not in within]
        above = [f"`{n}`" for n in rest if lora["accuracy"] > summary[n]["accuracy"]]
        below = [f"`{n}`" for n in rest if lora["accuracy"] < summary[n]["accuracy"]]
        level = [f"`{n}`" for n in rest if lora["accuracy"] == summary[n]["accuracy"]]
        lines.append(
            f"- Where LoRA sits: {lora['params']:,} trainable parameters ({lora['params'] / full['params']:.2%} of "
            f"full), accuracy {lora['accuracy']:.3f} against full's {full['accuracy']:.3f}"
            + (f", above {', '.join(above)}" if above else "")
            + (f", below {', '.join(below)}" if below else "")
            + (f", level with {', '.join(level)}" if level else "")
            + (f", not to be told apart from {', '.join(within)} (the 95% intervals overlap)" if within else "")
            + f"; its training loop took {lora['seconds'] / max(full['seconds'], 1e-9):.2f}x full's time"
            + (step_words(table, ADAPTER) or "")
            + "."
        )
    if len(trained) > 1:
        fastest = min(trained, key=lambda n: trained[n]["seconds"])
        slowest = max(trained, key=lambda n: trained[n]["seconds"])
        lines.append(
            f"- Training time: `{fastest}` was quickest ({trained[fastest]['seconds']:.1f} s), `{slowest}` slowest "
            f"({trained[slowest]['seconds']:.1f} s). Fewer trainable parameters do not mean proportionally less "
            f"time: every configuration still runs the whole model forward, and LoRA back-propagates through "
            f"every layer to reach its adapters (notebook 05 measures why)."
        )
    hard = always_wrong(table)
    if hard is not None:
        lines.append(
            f"- {hard:,} of the {table[CORRECT].dropna().map(len).iloc[0]:,} test reviews are wrong in every trained "
            f"configuration and seed (section 9): beyond what more training of any of these configurations fixes."
        )
    return "\n".join(lines)


def always_wrong(table) -> int | None:
    """How many test reviews every trained configuration gets wrong with every seed (None without any trained
    configuration's per-review correctness)."""
    import numpy as np

    if CORRECT not in table:
        return None
    rows = table[table["config"].map(trains).astype(bool)][CORRECT].dropna()
    if rows.empty or len({len(c) for c in rows}) != 1:
        return None
    return int((np.asarray(rows.tolist()) == 0).all(axis=0).sum())


def shown_table(table):
    """`table` formatted for reading: 3 decimals for scores and p-values, 1 for seconds, thousands separators for
    counts and memory, no index."""
    formats = {}
    for column in table.columns:
        if column in ("trainable_params", "total_params", "only_this_right") or column.startswith("only_"):
            formats[column] = "{:,.0f}"
        elif column in ("peak_memory_mb", "train_samples_per_second"):
            formats[column] = "{:,.1f}"
        elif column.endswith("seconds"):
            formats[column] = "{:.1f}"
        elif column == "learning_rate" and table[column].dtype.kind == "f":  # 06 shows it as text, with its source
            formats[column] = "{:.2g}"
        elif table[column].dtype.kind == "f":
            formats[column] = "{:.3f}"
    return table.style.format(formats, na_rep="-").hide(axis="index")
