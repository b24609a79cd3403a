"""Our recipe against the write-ups', end to end: the real `bertpeft train` command, full fine-tuning, once with
the write-ups' recipe (every review padded to max_length at tokenization, the Trainer's random sampler, fp32) and
once with ours (per-batch padding, length-grouped batches, the precision `auto` chooses on this machine), repeated
and interleaved (A B, B A, ...). For example

    python benchmarks/recipe_end_to_end.py --profile quick --data ../shared/data/yelp_polarity

prints the table and writes benchmarks/results/recipe_end_to_end-quick-cpu-KIND.json, KIND naming the CPU's native
bf16 (amx_bf16, avx512_bf16) or `no-bf16`. Ratios are paired within a repetition; the table shows medians.
"""

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a checkout without `pip install -e .`

# The write-ups' recipe, as settings of `bertpeft train`; ours is the defaults.
RECIPES = {
    "write-ups' recipe": ["--padding", "max_length", "--group-by-length", "false", "--precision", "fp32"],
    "ours": [],
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--data", default="../shared/data/yelp_polarity")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--n-train", type=int, default=160)
    parser.add_argument("--n-test", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--runs", default="runs/recipe-end-to-end", help="folder for the run folders (emptied)")
    parser.add_argument("--output", default="benchmarks/results", help="folder for the JSON")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        print("recipe_end_to_end: error: --repeats must be 1 or more", file=sys.stderr)
        return 2

    import numpy as np

    from bertpeft.device import cpu_bf16_feature, device_description
    from bertpeft.layout import atomic_write_json, git_state, package_versions
    from bertpeft.result import read_result

    runs = Path(args.runs)
    shutil.rmtree(runs, ignore_errors=True)
    common = ["--profile", args.profile, "--config", "full", "--data", args.data, "--max-length", str(args.max_length)]
    common += ["--n-train", str(args.n_train), "--n-test", str(args.n_test), "--progress", "lines"]
    rows = []
    for repeat in range(args.repeats):
        names = list(RECIPES) if repeat % 2 == 0 else list(RECIPES)[::-1]
        for name in names:
            out = runs / f"{'seeds' if name != 'ours' else 'ours'}-{repeat}"
            command = [sys.executable, "-m", "bertpeft", "train", *common, *RECIPES[name], "--output", str(out)]
            print(f"repeat {repeat + 1}/{args.repeats}: {name}", flush=True)
            start = time.perf_counter()
            done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True)
            wall = time.perf_counter() - start
            if done.returncode != 0:
                print(done.stdout[-2000:] + done.stderr[-2000:], file=sys.stderr)
                return done.returncode
            result = read_result(out / "results" / "full-seed42.json")
            rows.append(
                {
                    "recipe": name,
                    "repeat": repeat,
                    "precision": result.numeric_precision,
                    "padding": result.run_config["padding"],
                    "group_by_length": result.run_config["group_by_length"],
                    "command_seconds": wall,
                    "train_seconds": result.train_seconds,
                    "train_samples_per_second": result.train_samples_per_second,
                    "eval_seconds": result.eval_seconds,
                    "accuracy": result.accuracy,
                }
            )
    by = {n: sorted((r for r in rows if r["recipe"] == n), key=lambda r: r["repeat"]) for n in RECIPES}
    seeds, ours = by["write-ups' recipe"], by["ours"]
    ratios = {
        "training_samples_per_second": float(
            np.median([o["train_samples_per_second"] / s["train_samples_per_second"] for s, o in zip(seeds, ours)])
        ),
        "command_wall_time": float(
            np.median([s["command_seconds"] / o["command_seconds"] for s, o in zip(seeds, ours)])
        ),
    }
    for name in RECIPES:
        r = by[name]
        print(
            f"{name:18} {r[0]['precision']:5} training {np.median([x['train_samples_per_second'] for x in r]):6.2f} "
            f"samples/s, command {np.median([x['command_seconds'] for x in r]):6.1f} s, accuracy {r[0]['accuracy']:.3f}"
        )
    print(
        f"ours / the write-ups' recipe: {ratios['training_samples_per_second']:.2f}x the training samples/s, the "
        f"whole command {ratios['command_wall_time']:.2f}x faster (medians of {args.repeats} paired repeats)"
    )
    feature = cpu_bf16_feature()
    path = Path(args.output) / f"recipe_end_to_end-{args.profile}-cpu-{feature or 'no-bf16'}.json"
    atomic_write_json(
        path,
        {
            "kind": "recipe_end_to_end",
            "settings": {k: v for k, v in vars(args).items() if k not in ("runs", "output")},
            "recipes": RECIPES,
            "cpu_bf16_feature": feature,
            "ours_over_write_ups": ratios,
            "rows": rows,
            "device": device_description(),
            "versions": package_versions(),
            "git": git_state(),
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
