"""Timing setups against each other: interleaved repetitions, per-setup summaries, and the machine's
matrix-multiply peak."""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import asdict
from typing import Any

from ..config import ADAPTER, ConfigError
from ..device import synchronize
from ..training import progress_mode
from .setups import Setup, section_setups
from .trainee import CLOCKS, PHASES, SpeedBench, Trainee


# ------------------------------------------------------------------------------------------------------- timing
def compare(bench: SpeedBench, setups: list[Setup], reference: str, repeats: int = 3, progress=print) -> dict[str, Any]:
    """Time `setups` interleaved: each repetition runs every setup's timed batches, in an order that rotates and
    reverses from one repetition to the next (A B C, C B A, B C A, ...). Returns one summary per setup, ratios to
    `reference` paired per repetition, and every step's raw timings."""
    if repeats < 1:
        raise ConfigError(f"repeats must be at least 1, got {repeats}")
    labels = [s.label for s in setups]
    if len(set(labels)) != len(labels) or reference not in labels:
        raise ConfigError(f"setup labels must be unique and include the reference {reference!r}: {labels}")
    trainees = []
    for setup in setups:
        trainees.append(Trainee(bench, setup))
    records = []
    for r in range(repeats):
        order = list(range(len(setups)))
        order = order[r % len(order) :] + order[: r % len(order)]
        for i in order[::-1] if r % 2 else order:
            trainee = trainees[i]
            start = time.perf_counter()
            for position in trainee.batches.timed:
                timing = trainee.step(trainee.batches.rows(position))
                records.append(
                    {
                        "setup": setups[i].label,
                        "repeat": r,
                        "batch": position,
                        "width": trainee.batches.widths[position],
                        **timing,
                    }
                )
            if progress:
                progress(
                    f"  repeat {r + 1}/{repeats} {setups[i].label}: "
                    f"{(time.perf_counter() - start) / len(trainee.batches.timed):.3f} s/step"
                )
    summaries = {
        s.label: _summarize(t, [x for x in records if x["setup"] == s.label]) for s, t in zip(setups, trainees)
    }
    ref = summaries[reference]
    for summary in summaries.values():
        ratios = [a / b for a, b in zip(summary["step_seconds_per_repeat"], ref["step_seconds_per_repeat"])]
        summary["relative_step_time"] = statistics.median(ratios)
        summary["relative_step_time_per_repeat"] = ratios
        summary["relative_samples_per_second"] = statistics.median(
            [
                (summary["batch_size"] / a) / (ref["batch_size"] / b)
                for a, b in zip(summary["step_seconds_per_repeat"], ref["step_seconds_per_repeat"])
            ]
        )
    del trainees
    _free(bench.device)
    return {"reference": reference, "repeats": repeats, "setups": summaries, "steps": records}


def _summarize(trainee: Trainee, records: list[dict]) -> dict[str, Any]:
    setup, batches = trainee.setup, trainee.batches
    per_repeat = {}
    for record in records:
        per_repeat.setdefault(record["repeat"], []).append(record)
    step = [statistics.fmean(x["step"] for x in rows) for rows in per_repeat.values()]
    phases = {
        p: statistics.median(statistics.fmean(x[p] for x in rows) for rows in per_repeat.values()) for p in PHASES
    }
    median_step = statistics.median(step)
    flops = statistics.fmean(trainee.counts[p]["flops"] for p in batches.timed)
    real, padded = zip(*(batches.tokens(p) for p in batches.timed))
    lora = setup.configuration == ADAPTER
    return {
        **{k: v for k, v in asdict(setup).items() if k != "label"},
        "lora_r": (setup.lora_r or trainee.config.lora_r) if lora else None,
        "lora_dropout": (trainee.config.lora_dropout if setup.lora_dropout is None else setup.lora_dropout)
        if lora
        else None,
        "precision": trainee.precision,
        "batch_size": batches.batch_size,
        "trains": trainee.trains,
        "sampler": batches.recipe.sampler,
        "padding": batches.recipe.padding,
        "pad_to_multiple_of": batches.recipe.pad_to_multiple_of,
        "trainable_params": trainee.trainable,
        "step_seconds": median_step,
        "step_seconds_per_repeat": step,
        "phase_seconds": phases,
        "wall_seconds": statistics.median(statistics.fmean(x["wall"] for x in rows) for rows in per_repeat.values()),
        "samples_per_second": batches.batch_size / median_step,
        "real_tokens_per_step": statistics.fmean(real),
        "padded_tokens_per_step": statistics.fmean(padded),
        "epoch_padded_over_real_tokens": batches.padded_over_real,
        "timed_widths": [batches.widths[p] for p in batches.timed],
        "flops_per_step": flops,
        "achieved_flops_per_second": flops / median_step,
        # how well the timed batches stand for the epoch: 1.0 = their mean FLOPs equal the epoch's mean
        "timed_over_epoch_flops": flops / trainee.epoch_flops,
        "memory": trainee.memory(),
    }


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _free(device: str) -> None:
    import gc

    gc.collect()
    if device == "cuda":
        import torch

        torch.cuda.empty_cache()


class _Overwritten:
    """A progress report that keeps one line and overwrites it: in Jupyter one output updated in place, in a
    terminal one line rewritten. `close()` clears it once the section is done (its table follows)."""

    def __init__(self):
        from IPython.display import Pretty, display

        self.pretty = Pretty
        self.handle = display(Pretty(""), display_id=True) if "ipykernel" in sys.modules else None

    def __call__(self, message: str) -> None:
        if self.handle is not None:
            self.handle.update(self.pretty(message.strip()))
        else:
            print("\r" + message.strip().ljust(72), end="", flush=True)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.update(self.pretty(""))
        else:
            print("\r" + " " * 72 + "\r", end="", flush=True)


def repeat_progress(progress: str = "auto"):
    """What `run_section` reports while it runs, for a notebook: `bar` (in Jupyter or a terminal, what `auto` picks
    there) one line that each repetition overwrites, cleared when the section ends; `lines` nothing per repetition
    (papermill and logs: the section's table follows)."""
    mode = progress_mode(progress)
    if mode not in ("bar", "lines"):
        raise ConfigError(f"progress must be auto, bar or lines, got {progress!r}")
    return _Overwritten if mode == "bar" else None


def run_section(bench: SpeedBench, name: str, repeats: int = 3, progress=print) -> dict[str, Any]:
    """Time the named section's setups against each other (`compare`). `progress`: a function taking each line
    (print by default), None for none, or a class from `repeat_progress` (one overwritten line per section)."""
    setups, reference = section_setups(name, bench.config, bench.device)
    if isinstance(progress, type):
        report = progress()
        try:
            return compare(bench, setups, reference, repeats, report)
        finally:
            report.close()
    if progress:
        progress(f"{name}: {', '.join(s.label for s in setups)}")
    return compare(bench, setups, reference, repeats, progress)


def matmul_peak(
    device: str, precision: str = "fp32", max_size: int | None = None, repeats: int = 5, clock: str = "wall"
) -> float:
    """This machine's matrix-multiply rate in FLOP/s: the best of `repeats` square products (the roof a training
    step's matrix products run under). The size grows from 256 until one product takes 0.1 s (or `max_size`), so
    a slow precision (bf16 on a CPU without bf16 instructions) costs seconds, not minutes."""
    import torch

    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    max_size = max_size or (8192 if device == "cuda" else 2048)
    size, best = 256, 0.0
    while True:
        a = torch.randn(size, size, device=device).to(dtype)
        b = torch.randn(size, size, device=device).to(dtype)
        linear = torch.nn.functional.linear  # what nn.Linear runs; on a CPU, bf16 `a @ b` takes a far slower path
        linear(a, b)
        seconds = []
        for _ in range(repeats):
            synchronize(device)
            start = CLOCKS[clock]()
            linear(a, b)
            synchronize(device)
            seconds.append(CLOCKS[clock]() - start)
        best = max(best, 2 * size**3 / min(seconds))
        if size * 2 > max_size or min(seconds) > 0.1:
            return best
        size *= 2
