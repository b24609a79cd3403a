"""Where the minutes of a series go: `bertpeft run` timed per notebook and, inside each training notebook, per part.

It runs the real command in its own process into a fresh run folder (nothing skipped), then reads what the run
recorded: each notebook's wall time (`run_status.json`) and, for each training, its parts from the result JSON:
loading and preparing the model, the training loop (optimizer steps alone), the evaluations and saves during
training, the final test evaluation, the independent benchmark, and the rest of the notebook (kernel start,
imports, data and tokenizer loading, saving the weights, figures). It also lists every pass over the test reviews
that each training made. For example

    python benchmarks/series_profile.py --profile quick --data ../shared/data/yelp_polarity

prints the table and writes benchmarks/results/series_profile-quick.json; `--from-run RUN` profiles a finished run
folder instead of running one.
"""

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a checkout without `pip install -e .`

from bertpeft.cli import add_overrides, add_profile  # noqa: E402
from bertpeft.config import CLI_SETTINGS  # noqa: E402
from bertpeft.result import read_result  # noqa: E402
from bertpeft.series import earlier_invocations  # noqa: E402

SETTINGS = [name for name in CLI_SETTINGS if name != "progress"]
# A training notebook's parts, as the result JSON records them (seconds)
PARTS = {
    "loading": "setup_seconds",
    "training loop": "train_seconds",
    "final evaluation": "eval_seconds",
    "independent benchmark": "benchmark_seconds",
}


def training_parts(wall: float, result) -> dict:
    """A training notebook's wall time split into its parts (from its Result); `rest` is what no part accounts
    for."""
    parts = {name: float(getattr(result, key) or 0.0) for name, key in PARTS.items()}
    runtime = result.trainer_runtime_seconds
    parts["evaluations and saves during training"] = max(0.0, runtime - parts["training loop"]) if runtime else 0.0
    parts["rest"] = max(0.0, wall - sum(parts.values()))
    return parts


def ran_steps(run: Path) -> tuple[dict, list[dict]]:
    """The latest invocation's status, and each of its steps as it last ran (a resumed run skips the notebooks an
    earlier invocation finished: their times come from that invocation)."""
    invocations = earlier_invocations(run / "run_status.json")
    last = {}
    for invocation in invocations:
        for step in invocation.get("steps", []):
            if step["status"] != "skipped" or step["label"] not in last:
                last[step["label"]] = step
    latest = invocations[-1]
    return latest, [last[step["label"]] for step in latest["steps"]]


def profile(run: Path) -> dict:
    status, steps = ran_steps(run)
    rows = []
    for step in steps:
        row = {
            "step": step["label"],
            "notebook": step["notebook"],
            "status": step["status"],
            "seconds": step["seconds"],
        }
        parameters = step.get("parameters") or {}
        if step["status"] == "ok" and step["notebook"] == "02_train" and parameters.get("configuration"):
            path = run / "results" / f"{parameters['configuration']}-seed{parameters['seed']}.json"
            if path.exists():
                result = read_result(path)
                row |= training_parts(step["seconds"], result)
                row["test_passes"] = result.test_passes
                row["precision"] = result.numeric_precision
        rows.append(row)
    trainings = [r for r in rows if "training loop" in r]
    parts = [*PARTS, "evaluations and saves during training", "rest"]
    wall = sum(i.get("wall_seconds") or 0 for i in earlier_invocations(run / "run_status.json"))
    loops = sum(r["training loop"] for r in trainings)
    precisions = sorted({r["precision"] for r in trainings if r.get("precision")})
    return {
        "run": str(run),
        "argv": status.get("argv"),
        "wall_seconds": wall,
        "wall_over_training_loops": wall / loops if loops else None,
        "precision": ", ".join(precisions),
        "notebook_seconds": sum(r["seconds"] for r in rows),
        "steps": rows,
        "training_parts_seconds": {p: sum(r[p] for r in trainings) for p in parts},
        "most_test_passes": max((len(r["test_passes"] or []) for r in trainings), default=0),
    }


def printed(report: dict) -> str:
    lines = [f"{'step':34} {'status':11} {'seconds':>8}   parts (s)"]
    for r in report["steps"]:
        parts = ""
        if "training loop" in r:
            parts = (
                f"loading {r['loading']:.1f} · loop {r['training loop']:.1f} · during "
                f"{r['evaluations and saves during training']:.1f} · final eval {r['final evaluation']:.1f} · "
                f"benchmark {r['independent benchmark']:.1f} · rest {r['rest']:.1f} · test passes "
                f"{len(r['test_passes'] or [])}"
            )
        lines.append(f"{r['step']:34} {r['status']:11} {r['seconds']:8.1f}   {parts}")
    lines.append(f"series wall time {report['wall_seconds']:.1f} s ({report['wall_seconds'] / 60:.1f} min)")
    if report["wall_over_training_loops"]:
        lines.append(f"wall time / training loops: {report['wall_over_training_loops']:.2f} ({report['precision']})")
    lines.append(
        "training notebooks, summed: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in report["training_parts_seconds"].items())
    )
    return "\n".join(lines)


def machine_speed() -> float:
    """The fp32 matrix-multiply rate (FLOP/s) of the device the series trains on, measured now."""
    import torch

    from bertpeft.speed import matmul_peak

    return matmul_peak("cuda" if torch.cuda.is_available() else "cpu", "fp32")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_profile(parser)
    add_overrides(parser, SETTINGS)
    parser.add_argument("--configs", help="comma-separated configurations (default: the profile's)")
    parser.add_argument("--runs", default="runs/series-profile", help="run folder (emptied first)")
    parser.add_argument("--from-run", help="profile this finished run folder instead of running one")
    parser.add_argument("--output", default="benchmarks/results", help="folder for the JSON")
    parser.add_argument("--name", help="file name of the JSON (default: series_profile-PROFILE.json)")
    args = parser.parse_args(argv)
    if args.name and Path(args.name).name != args.name:
        print(f"series_profile: error: --name takes a file name, not a path: {args.name}", file=sys.stderr)
        return 2

    from bertpeft.device import cpu_bf16_feature, default_profile, device_description
    from bertpeft.layout import atomic_write_json, git_state, package_versions

    profile_name = args.profile or default_profile()
    peak = machine_speed()  # shared machines differ from hour to hour: the minutes below are at this rate
    if args.from_run:
        run = Path(args.from_run)
        if not (run / "run_status.json").exists():
            print(
                f"series_profile: error: {run} has no run_status.json: give a folder bertpeft run wrote",
                file=sys.stderr,
            )
            return 2
    else:
        run = Path(args.runs)
        shutil.rmtree(run, ignore_errors=True)  # a fresh folder: every notebook runs, none is skipped
        command = [sys.executable, "-m", "bertpeft", "run", "--profile", profile_name, "--output", str(run)]
        for name in SETTINGS:
            value = getattr(args, name, None)
            if value is not None and name != "output":
                command += [f"--{name.replace('_', '-')}", str(value)]
        if args.configs:
            command += ["--configs", args.configs]
        start = time.perf_counter()
        done = subprocess.run(command, stdin=subprocess.DEVNULL)
        print(f"bertpeft run: exit {done.returncode} after {time.perf_counter() - start:.1f} s", flush=True)
        if done.returncode != 0:
            return done.returncode
    if args.from_run and (run / "run_config.json").exists():
        profile_name = json.loads((run / "run_config.json").read_text(encoding="utf-8")).get("profile", profile_name)
    report = profile(run)
    print(printed(report))
    report |= {"profile": profile_name, "device": device_description(), "versions": package_versions()}
    report["cpu_bf16_feature"] = cpu_bf16_feature()
    report["matmul_fp32_gflops_per_second_at_start"] = round(peak / 1e9, 1)
    print(f"this machine's fp32 matrix-multiply rate at the start: {peak / 1e9:.0f} GFLOP/s")
    report["git"] = git_state()
    out = Path(args.output) / (args.name or f"series_profile-{profile_name}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, report)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
