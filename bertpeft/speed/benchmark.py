"""The benchmark run: measure the sections, check the targets, print the tables and write the JSON."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..config import ADAPTER, HEAD, ConfigError, RunConfig
from ..device import device_description
from ..layout import atomic_write_json, git_state, package_versions
from .setups import DEFAULT_SECTIONS, SECTIONS
from .timing import _threads, matmul_peak, run_section
from .trainee import PHASES, SpeedBench


# ------------------------------------------------------------------------------------------------ the benchmark
def measure_training_speed(
    config: RunConfig,
    sections=DEFAULT_SECTIONS,
    repeats: int = 3,
    steps: int = 4,
    device: str | None = None,
    clock: str = "wall",
    progress=print,
) -> dict[str, Any]:
    """Run the named sections on one model, one set of reviews and one max_length; returns the result dict."""
    unknown = [name for name in sections if name not in SECTIONS]
    if unknown:
        raise ConfigError(f"unknown section(s) {unknown}: use {', '.join(SECTIONS)}")
    started = time.perf_counter()
    bench = SpeedBench(config, device, steps, clock=clock)
    result: dict[str, Any] = {
        "kind": "training_speed",
        "profile": config.profile,
        "model": config.model,
        "total_params": sum(p.numel() for p in bench.base.parameters()),
        "benchmark": {
            "sections": list(sections),
            "repeats": repeats,
            "steps_per_repeat": steps,
            "max_length": config.max_length,
            "batch_size": config.train_batch_size,
            "step": "collate + to(device) + forward + backward + clip_grad_norm + fused AdamW + zero_grad",
            "clock": clock,
            "threads": _threads(),
            "timed_batches": "full batches at evenly spaced quantiles of the epoch's padded widths",
        },
        "reviews": bench.token_stats(),
        "device": device_description(),
        "device_type": bench.device,
        "versions": package_versions(),
        "git": git_state(),
        "run_config": config.to_dict(),
    }
    precisions = {"fp32"}
    result["sections"] = {}
    for name in sections:
        section = run_section(bench, name, repeats, progress)
        precisions |= {s["precision"] for s in section["setups"].values()}
        result["sections"][name] = section
    result["matmul_peak_flops_per_second"] = {p: matmul_peak(bench.device, p, clock=clock) for p in sorted(precisions)}
    for section in result["sections"].values():
        for summary in section["setups"].values():
            peak = result["matmul_peak_flops_per_second"][summary["precision"]]
            summary["fraction_of_matmul_peak"] = summary["achieved_flops_per_second"] / peak
    result["targets"] = check_targets(result)
    result["seconds"] = time.perf_counter() - started
    result["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return result


TARGETS = {
    "ours_over_seeds_samples_per_second": (">=", 4.0),
    "lora_over_full_step_time": ("<=", 0.75),
    "head_over_full_step_time": ("<=", 0.4),
}


def check_targets(result: dict[str, Any]) -> dict[str, Any]:
    """The speed goals this benchmark checks (set for MiniLM at max_length 512), with the measured values."""
    sections = result["sections"]
    values = {}
    if "recipes" in sections:
        values["ours_over_seeds_samples_per_second"] = sections["recipes"]["setups"]["ours"][
            "relative_samples_per_second"
        ]
    configurations = sections.get("configurations", {}).get("setups", {})
    for name in (ADAPTER, HEAD):
        if name in configurations:
            values[f"{name}_over_full_step_time"] = configurations[name]["relative_step_time"]
    out = {}
    for key, value in values.items():
        op, bound = TARGETS[key]
        out[key] = {"value": value, "target": f"{op} {bound}", "met": value >= bound if op == ">=" else value <= bound}
    return out


def speed_table(result_or_section: dict[str, Any]):
    """One row per setup: step time, samples/s, ratio to the section's reference, phases, FLOP/s, memory."""
    import pandas as pd

    sections = result_or_section.get("sections") or {"": result_or_section}
    rows = []
    for name, section in sections.items():
        for label, s in section["setups"].items():
            memory = s["memory"]
            rows.append(
                {
                    "section": name,
                    "setup": label,
                    "precision": s["precision"],
                    "step_ms": 1000 * s["step_seconds"],
                    "samples_per_s": s["samples_per_second"],
                    f"x_{section['reference']}": s["relative_step_time"],
                    **{f"{p}_ms": 1000 * s["phase_seconds"][p] for p in PHASES[1:]},
                    "gflop_per_step": s["flops_per_step"] / 1e9,
                    "tflop_per_s": s["achieved_flops_per_second"] / 1e12,
                    "pct_of_peak": 100 * s.get("fraction_of_matmul_peak", float("nan")),
                    "memory_mb": memory["measured_peak_mb"]
                    if memory["measured_peak_mb"] is not None
                    else memory["counted"]["total_mb"],
                    "trainable": s["trainable_params"],
                }
            )
    table = pd.DataFrame(rows)
    if len(sections) == 1:
        table = table.drop(columns="section")
    return table.dropna(axis=1, how="all")  # no pct_of_peak where no peak was measured


def format_speed_table(result: dict[str, Any]) -> str:
    """Plain-text tables, one per section, for a terminal or a README."""
    lines = []
    for name, section in result["sections"].items():
        table = speed_table(section).rename(columns={f"x_{section['reference']}": "relative"})
        columns = [
            "setup",
            "precision",
            "step_ms",
            "samples_per_s",
            "relative",
            "forward_ms",
            "backward_ms",
            "optimizer_ms",
            "gflop_per_step",
            "tflop_per_s",
            "pct_of_peak",
            "memory_mb",
        ]
        lines += [
            f"[{name}] relative = step time / step time of {section['reference']!r}",
            table[[c for c in columns if c in table]].to_string(index=False, float_format=_fmt),
            "",
        ]
    memory = "measured peak (CUDA)" if result["device_type"] == "cuda" else "counted: weights+grads+AdamW+activations"
    lines.append(
        f"memory_mb: {memory}; tflop_per_s from counted matrix-product FLOPs; peaks: "
        + ", ".join(f"{p} {v / 1e12:.3g} TFLOP/s" for p, v in result["matmul_peak_flops_per_second"].items())
    )
    for key, target in result["targets"].items():
        lines.append(
            f"target {key}: {target['value']:.3f} ({target['target']}) {'met' if target['met'] else 'NOT met'}"
        )
    return "\n".join(lines)


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"


def result_filename(config: RunConfig, device: str) -> str:
    return f"training_speed-{config.profile}-{device}.json"


def run_speed_benchmark(
    config: RunConfig,
    sections=DEFAULT_SECTIONS,
    repeats: int = 3,
    steps: int = 8,
    output: str | Path = "benchmarks/results",
    name: str | None = None,
    threads: int | None = None,
    clock: str = "wall",
) -> Path:
    """`bertpeft bench`: measure `sections` on `config`'s model and reviews, print the tables, write the JSON
    (`output/name`, by default training_speed-PROFILE-DEVICE.json); returns its path."""
    if isinstance(sections, str):
        sections = tuple(s.strip() for s in sections.split(",") if s.strip())
    if repeats < 1 or steps < 1:
        raise ConfigError(f"--repeats and --steps must be at least 1, got {repeats} and {steps}")
    if threads:
        import torch

        torch.set_num_threads(threads)
    result = measure_training_speed(config, sections, repeats, steps, clock=clock)
    path = Path(output) / (name or result_filename(config, result["device_type"]))
    atomic_write_json(path, result)
    print(format_speed_table(result))
    print(f"wrote {path}")
    return path
