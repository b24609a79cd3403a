"""Precision parity: each configuration trained in fp32 and in bf16 autocast with the same seeds, on the same
reviews, compared pair by pair. It answers two questions about `--precision auto` on a CPU with native bf16: how
much faster the training loop runs, and whether the accuracy moves by more than the noise. For example

    python benchmarks/precision_parity.py --profile quick --data ../shared/data/yelp_polarity --seeds 1,2,3

prints the table and writes benchmarks/results/precision_parity-quick-cpu.json (the runs go under
runs/precision-parity/<precision>/). It resumes: a result already in its run folder is read, not trained again.
Each pair (configuration, seed) trains both precisions one after the other, alternating which goes first.
"""

import argparse
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a checkout without `pip install -e .`

from bertpeft.cli import add_overrides, add_profile  # noqa: E402
from bertpeft.config import CLI_SETTINGS, ConfigError, check_configuration, profile_config  # noqa: E402

PRECISIONS = ("fp32", "bf16")
SETTINGS = [n for n in CLI_SETTINGS if n not in ("precision", "progress", "configuration", "seed", "seeds")]


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def trained(config) -> dict:
    """The result of `config`, read back when its run folder already has it (a resumed comparison)."""
    from bertpeft.layout import RunDir
    from bertpeft.manifest import OURS, result_differences, state
    from bertpeft.result import read_result
    from bertpeft.training import train_configuration

    layout = RunDir(config)
    path = layout.result(config.configuration, config.seed)
    if path.exists() and state(layout.root, path) == OURS:
        result = read_result(path)
        if not result_differences(config, result):
            return result
    return train_configuration(config, benchmark=False)


def compare(config, configurations, seeds, runs: Path) -> tuple[list[dict], list[dict]]:
    import numpy as np

    from bertpeft.stats import holm, paired_difference

    rows, pairs = [], 0
    for name in configurations:
        for seed in seeds:
            order = PRECISIONS if pairs % 2 == 0 else PRECISIONS[::-1]
            pairs += 1
            for precision in order:
                run = config.replace(configuration=name, seed=seed, precision=precision, output=str(runs / precision))
                print(f"{name}, seed {seed}, {precision}", flush=True)
                result = trained(run)
                labels = np.asarray(result.test_labels)
                rows.append(
                    {
                        "config": name,
                        "seed": seed,
                        "precision": result.numeric_precision,
                        "accuracy": result.accuracy,
                        "f1": result.f1,
                        "train_seconds": result.train_seconds,
                        "step_seconds_median": result.step_seconds_median,
                        "eval_seconds": result.eval_seconds,
                        "learning_rate": result.learning_rate,
                        "git": result.git.get("sha"),  # the code that trained it (a resumed comparison may span two)
                        # per test review, in the prepared test split's order: 1 right, 0 wrong
                        "correct": "".join("01"[int(c)] for c in np.asarray(result.test_predictions) == labels),
                    }
                )
    summaries = []
    for name in configurations:
        by = {
            p: sorted((r for r in rows if r["config"] == name and r["precision"] == p), key=lambda r: r["seed"])
            for p in PRECISIONS
        }
        fp32, bf16 = by["fp32"], by["bf16"]
        right = {p: [[int(c) for c in r["correct"]] for r in by[p]] for p in PRECISIONS}
        difference = paired_difference(right["bf16"], right["fp32"], seed=0)
        trains = any(r["train_seconds"] for r in fp32)
        summaries.append(
            {
                "config": name,
                "accuracy_fp32": float(np.mean([r["accuracy"] for r in fp32])),
                "accuracy_bf16": float(np.mean([r["accuracy"] for r in bf16])),
                "accuracy_fp32_per_seed": [r["accuracy"] for r in fp32],
                "accuracy_bf16_per_seed": [r["accuracy"] for r in bf16],
                "bf16_minus_fp32": difference,
                # the median over seeds of each pair's ratio: bf16's time / fp32's
                "train_time_ratio": float(
                    np.median([b["train_seconds"] / f["train_seconds"] for f, b in zip(fp32, bf16)])
                )
                if trains
                else None,
                "eval_time_ratio": float(
                    np.median([b["eval_seconds"] / f["eval_seconds"] for f, b in zip(fp32, bf16)])
                ),
                "train_seconds_fp32": float(np.median([r["train_seconds"] for r in fp32])) if trains else None,
                "train_seconds_bf16": float(np.median([r["train_seconds"] for r in bf16])) if trains else None,
            }
        )
    adjusted = holm([s["bf16_minus_fp32"]["p_value"] for s in summaries])
    for summary, p in zip(summaries, adjusted, strict=True):
        summary["bf16_minus_fp32"]["p_holm"] = p
    return rows, summaries


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_profile(parser)
    add_overrides(parser, SETTINGS)
    parser.add_argument("--seeds", default="1,2,3", help="comma-separated training seeds")
    parser.add_argument("--configs", help="comma-separated configurations (default: the profile's)")
    parser.add_argument("--runs", default="runs/precision-parity", help="folder for the training runs")
    parser.add_argument("--output", default="benchmarks/results", help="folder for the JSON")
    args = parser.parse_args(argv)
    try:
        config = profile_config(
            args.profile or "quick", **{n: getattr(args, n, None) for n in SETTINGS}, progress="lines"
        )
        configurations = [c.strip() for c in (args.configs or ",".join(config.configurations)).split(",") if c.strip()]
        for name in configurations:
            check_configuration(name)
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except (ConfigError, ValueError) as err:
        print(f"precision_parity: error: {err}", file=sys.stderr)
        return 2

    import pandas as pd

    from bertpeft.device import accelerator, cpu_bf16_feature, device_description
    from bertpeft.layout import atomic_write_json, git_state, package_versions

    if accelerator() != "cpu":
        print("precision_parity: error: this compares fp32 and bf16 on a CPU; run it on one", file=sys.stderr)
        return 2
    feature = cpu_bf16_feature()
    if not feature:
        print("precision_parity: note: this CPU has no native bf16: bf16 will be much slower here", flush=True)
    start = time.time()
    rows, summaries = compare(config, configurations, seeds, Path(args.runs))
    table = pd.DataFrame(
        [
            {
                "config": s["config"],
                "fp32": s["accuracy_fp32"],
                "bf16": s["accuracy_bf16"],
                "bf16 - fp32": s["bf16_minus_fp32"]["difference"],
                "95% interval": f"{s['bf16_minus_fp32']['low']:+.4f} to {s['bf16_minus_fp32']['high']:+.4f}",
                "p (Holm)": s["bf16_minus_fp32"]["p_holm"],
                "train time bf16/fp32": s["train_time_ratio"],
                "eval time bf16/fp32": s["eval_time_ratio"],
            }
            for s in summaries
        ]
    )
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    path = Path(args.output) / f"precision_parity-{config.profile}-cpu.json"
    atomic_write_json(
        path,
        {
            "kind": "precision_parity",
            "profile": config.profile,
            "cpu": {"name": cpu_name(), "bf16_feature": feature},
            "run_config": config.to_dict(),
            "seeds": seeds,
            "configurations": configurations,
            "interval": "two-level bootstrap (training seeds, then test reviews), 10,000 resamples; p-values "
            "Holm-adjusted over the configurations",
            "summary": summaries,
            "rows": rows,
            "device": device_description(),
            "versions": package_versions(),
            "git": git_state(),
            "seconds": round(time.time() - start, 1),  # this invocation's (a resumed one reads earlier results)
            "training_and_evaluation_seconds": round(sum(r["train_seconds"] + r["eval_seconds"] for r in rows), 1),
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
