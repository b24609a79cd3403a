"""The results table of a run, computed from its per-configuration JSONs only (never by retraining)."""

from __future__ import annotations

from pathlib import Path

from .config import CONFIGURATIONS, unfrozen_layers
from .layout import RunDir, atomic_write_text, read_results
from .metrics import METRICS
from .stats import mcnemar_test, mean_and_interval

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
    "eval_seconds",
    "setup_seconds",
    "peak_memory_mb",
    "learning_rate",
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


def configuration_rank(name: str) -> tuple[int, int]:
    """Sort key: none, head, head+1, head+2, ..., lora, full (increasing complexity, as in Experiment A)."""
    if name.startswith("head+"):
        return CONFIGURATIONS.index("head"), unfrozen_layers(name)
    return (CONFIGURATIONS.index(name), 0) if name in CONFIGURATIONS else (len(CONFIGURATIONS), 0)


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
    import pandas as pd

    rows = [
        {**{c: result.get(c) for c in COLUMNS}, "device": device_text(result.get("device"))}
        for result in read_results(Path(run_dir))
    ]
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    if table.empty:
        return table
    order = sorted(range(len(table)), key=lambda i: (configuration_rank(table.at[i, "config"]), table.at[i, "seed"]))
    return table.iloc[order].reset_index(drop=True)


def write_results_csv(run_dir: str | Path):
    """`results_table` written (atomically) to `<run_dir>/results.csv`; returns the table."""
    table = results_table(run_dir)
    atomic_write_text(RunDir(run_dir).results_csv, table.to_csv(index=False))
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


def paired_tests(results: list[dict], reference: str = "full", alpha: float = 0.05):
    """Each configuration against `reference` on the same test reviews and seed: McNemar's exact test on the
    saved predictions (which reviews only one of the two gets right). `differs` is p < alpha."""
    import pandas as pd

    by_key = {(r["config"], r["seed"]): r for r in results}
    rows = []
    for result in sorted(results, key=lambda r: (configuration_rank(r["config"]), r["seed"])):
        other = by_key.get((reference, result["seed"]))
        if result["config"] == reference or other is None or "test_labels" not in result:
            continue
        if result["test_labels"] != other.get("test_labels"):
            continue  # not the same test reviews: no paired test
        test = mcnemar_test(result["test_predictions"], other["test_predictions"], result["test_labels"])
        rows.append(
            {
                "config": result["config"],
                "seed": result["seed"],
                "accuracy": result["accuracy"],
                f"{reference}_accuracy": other["accuracy"],
                "only_this_right": test["a_only_right"],
                f"only_{reference}_right": test["b_only_right"],
                "p_value": test["p_value"],
                "differs": test["p_value"] < alpha,
            }
        )
    return pd.DataFrame(rows)


def accuracy_over_seeds(table):
    """Per configuration: mean accuracy over seeds with a 95% t-interval of that mean (None with one seed)."""
    import pandas as pd

    rows = []
    for config, group in table.groupby("config", sort=False):
        stats = mean_and_interval(group["accuracy"].tolist())
        rows.append(
            {
                "config": config,
                "seeds": stats["n"],
                "accuracy_mean": stats["mean"],
                "low": stats["low"],
                "high": stats["high"],
            }
        )
    return pd.DataFrame(rows)
