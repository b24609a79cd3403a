"""Print the results table of docs/findings.md and wall times for a finished run folder, in Markdown.

    python scripts/reference_table.py runs/quick-reference

Every number comes from the run folder's result JSONs and run_status.json (the same functions notebook 04 uses):
accuracy as the mean over seeds with its 95% interval, F1 and training seconds as mean ± sd, the step time
relative to full fine-tuning, the paired test against full (pooled over seeds, Holm-corrected), the chosen learning rate, and how long each
part of the series took (summed over every invocation that ran it, when the run was resumed).
"""

import sys
from pathlib import Path

from bertpeft.layout import read_results
from bertpeft.report import accuracy_with_interval, paired_tests, results_table, step_time_relative
from bertpeft.series import earlier_invocations


def mean_sd(values, digits: int) -> str:
    values = [float(v) for v in values]
    mean = sum(values) / len(values)
    if len(values) < 2:
        return f"{mean:.{digits}f}"
    sd = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def table(run_dir: Path) -> str:
    results = results_table(run_dir)
    relative = step_time_relative(results).set_index("config")
    pairs = paired_tests(read_results(run_dir))
    rows = [
        "| configuration | trainable params | accuracy (95% interval) | F1 | benchmark agrees | train s | step / full's "
        "| differs from full (paired, Holm) | learning rate |",
        "|---|---:|---:|---:|:---:|---:|---:|:---:|---:|",
    ]
    for name, group in results.groupby("config", sort=False):
        mean, low, high, _ = accuracy_with_interval(group)
        interval = f"{mean:.3f} ({low:.3f}-{high:.3f})" if low is not None else f"{mean:.3f}"
        agrees = "yes" if (group["accuracy"] - group["benchmark_accuracy"]).abs().max() < 1e-6 else "NO"
        trained = group["trainable_params"].iloc[0] > 0
        step = f"{relative.loc[name, 'ratio']:.2f}x" if name in relative.index else "-"
        mine = pairs[pairs["config"] == name] if len(pairs) else pairs
        differs = (
            "-" if not len(mine) else f"{'yes' if mine['differs'].iloc[0] else 'no'} (p {mine['p_holm'].iloc[0]:.2g})"
        )
        rates = sorted({f"{r:.2g}" for r in group["learning_rate"].dropna()})
        rows.append(
            f"| {name} | {int(group['trainable_params'].iloc[0]):,} | {interval} | {mean_sd(group['f1'], 3)} | {agrees} "
            f"| {mean_sd(group['train_seconds'], 0) if trained else '0'} | {step} | {differs} "
            f"| {', '.join(rates) or '-'} |"
        )
    return "\n".join(rows)


def wall_times(run_dir: Path) -> str:
    invocations = earlier_invocations(run_dir / "run_status.json")  # the latest one last
    parts: dict[str, float] = {}
    for invocation in invocations:
        for step in invocation.get("steps", []):
            if step.get("status") in ("ok", "failed", "interrupted"):
                part = step["label"].split("-seed")[0]
                parts[part] = parts.get(part, 0.0) + float(step.get("seconds", 0.0))
    total = sum(float(i.get("wall_seconds") or 0.0) for i in invocations)
    lines = [f"- {part}: {seconds / 60:.1f} min" for part, seconds in parts.items()]
    return "\n".join([f"whole run: {total / 60:.1f} min in {len(invocations)} invocation(s)", *lines])


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/quick-reference")
    print(table(folder))
    print()
    print(wall_times(folder))
