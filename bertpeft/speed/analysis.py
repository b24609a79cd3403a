"""Notebook 05's helpers: open a bench, theory, memory and operator tables, plots, saved results, the verdict."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..config import ADAPTER, HEAD, REFERENCE, UNTRAINED, RunConfig, unfrozen_layers
from ..device import device_description
from ..layout import atomic_write_json, git_state, package_versions
from ..models import model_skeleton
from .setups import OURS, SEEDS, Setup
from .trainee import PHASES, SpeedBench, Trainee, configure_model, counted_step, counts_by_width


# --------------------------------------------------------------------------------- the notebook's helpers (05)
def open_bench(config: RunConfig, steps: int = 2, threads: int | None = None, clock: str = "wall") -> SpeedBench:
    """A `SpeedBench` for `config`, with torch limited to `threads` CPU threads when given (on a machine shared
    with other work, one thread per process avoids threads waiting on each other)."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    bench = SpeedBench(config, steps=steps, clock=clock)
    print(
        f"{config.model} ({sum(p.numel() for p in bench.base.parameters()):,} parameters) on {bench.device} "
        f"({torch.get_num_threads()} CPU threads, {clock} clock); {len(bench.texts)} reviews, max_length {config.max_length}, "
        f"batch {config.train_batch_size}"
    )
    return bench


def theory_table(bench: SpeedBench, section: dict[str, Any] | None = None):
    """Each configuration's step cost relative to full fine-tuning: the textbook estimate (N weights: forward 2N
    FLOPs per token, backward 2N for the activations' gradients + 2N for the weights'), matrix-product FLOPs
    counted on this model at the median batch width and at max_length, and (given a measured `section`) the
    measured step time."""
    import pandas as pd

    layers = len([m for m in bench.base.modules() if type(m).__name__ == "BertLayer"]) or 1
    theory = {UNTRAINED: 2 / 6, HEAD: 2 / 6, ADAPTER: 4 / 6, REFERENCE: 1.0}
    features = bench.features("dynamic")
    median = int(np.median([len(f["input_ids"]) for f in features]))
    rows = []
    for name in bench.config.configurations:
        if name not in bench.counts:
            model = configure_model(bench.base, bench.config, Setup(name, name))
            bench.counts[name] = counts_by_width(model, bench.config.train_batch_size, name != UNTRAINED)
        counts = bench.counts[name]
        k = unfrozen_layers(name)
        rows.append(
            {
                "configuration": name,
                "theory": theory.get(name, (2 + 4 * k / layers) / 6),
                "median": counts(median)["flops"],
                "max_length": counts(bench.config.max_length)["flops"],
            }
        )
    table = pd.DataFrame(rows).set_index("configuration")
    for column in ("median", "max_length"):
        table[column] = table[column] / table.loc[REFERENCE, column]
    table = table.rename(
        columns={
            "theory": "theory (2N/4N/6N)",
            "median": f"FLOPs at width {median}",
            "max_length": f"FLOPs at width {bench.config.max_length}",
        }
    )
    if section:
        table["measured step time"] = [section["setups"].get(n, {}).get("relative_step_time") for n in table.index]
    return table


BERT_BASE_CASED_SHAPE = "bert-base-cased-shape"


def model_shape(model: str, num_labels: int = 2):
    """A weightless (meta) model to count on: `model`'s architecture, or bert-base-cased's shape for
    "bert-base-cased-shape" (built from BertConfig(vocab_size=28996), no download)."""
    if model == BERT_BASE_CASED_SHAPE:
        import torch
        from transformers import BertConfig, BertForSequenceClassification

        with torch.device("meta"):
            return BertForSequenceClassification(BertConfig(vocab_size=28_996, num_labels=num_labels))
    return model_skeleton(model, num_labels)


def memory_table(model: str, config: RunConfig, batch_size: int | None = None, width: int | None = None):
    """Counted training memory per configuration in GB (fp32, no arithmetic run): weights, gradients + AdamW's two
    moments for the trainable weights, and the activations autograd keeps for backward at `batch_size` x `width`
    (default: the config's batch and max_length)."""
    import pandas as pd

    batch_size, width = batch_size or config.train_batch_size, width or config.max_length
    rows = []
    for name in config.configurations:
        meta = configure_model(model_shape(model), config, Setup(name, name))
        trainable = sum(p.numel() for p in meta.parameters() if p.requires_grad)
        weights = sum(p.numel() * p.element_size() for p in meta.parameters())
        saved = counted_step(meta, batch_size, width, name != UNTRAINED)["saved_bytes"]
        rows.append(
            {
                "configuration": name,
                "weights": weights / 2**30,
                "gradients + AdamW": 12 * trainable / 2**30,
                "activations": saved / 2**30,
            }
        )
    table = pd.DataFrame(rows).set_index("configuration")
    table["total"] = table.sum(axis=1)
    return table.rename_axis(columns=f"GB at batch {batch_size} x {width} tokens").round(2)


OPERATOR_GROUPS = (
    ("matrix products", r"(mm|bmm|addmm|baddbmm|matmul|linear|addmv|mv)"),
    ("dropout", r".*(dropout|bernoulli).*"),
    ("softmax", r".*softmax.*"),
    ("layer norm", r".*layer_norm.*"),
    ("GELU", r".*gelu.*"),
    ("optimizer", r".*(adam|_foreach|vector_norm|clip).*"),
    ("embedding", r".*embedding.*"),
    ("copies and casts", r"(copy_|to|_to_copy|clone|contiguous|cat|index_select|index)"),
)


def operator_group(name: str) -> str:
    """The group of a profiler event's operator, e.g. aten::addmm -> "matrix products"."""
    import re

    op = name.split("::")[-1]
    return next((group for group, pattern in OPERATOR_GROUPS if re.fullmatch(pattern, op)), "other element-wise")


@contextmanager
def native_stderr_silenced():
    """The process's stderr pointed at /dev/null: torch's profiler (Kineto) writes a `USDT: ... profiler_start`
    and `profiler_stop` line to it from C++ at every start and stop, which Python cannot filter and a reader
    cannot act on. Only while the profiler runs: Python's own sys.stderr is flushed first and left alone."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def operator_breakdown(bench: SpeedBench, setups: list[Setup]):
    """Where one step's time goes: the share of each operator group in percent (torch.profiler, self time, one
    step at the median timed batch after a warm-up) and the profiled step's total. The profiler adds a cost to every
    operator it records, so read the shares, not the milliseconds."""
    import pandas as pd
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if bench.device == "cuda" else [])
    rows = []
    for setup in setups:
        trainee = Trainee(bench, setup)
        timed = sorted(trainee.batches.timed, key=trainee.batches.widths.__getitem__)
        rows_of_batch = trainee.batches.rows(timed[len(timed) // 2])
        with native_stderr_silenced(), profile(activities=activities) as prof:
            trainee.step(rows_of_batch)
        for event in prof.key_averages():
            seconds = (event.self_device_time_total if bench.device == "cuda" else event.self_cpu_time_total) / 1e6
            if seconds > 0:
                rows.append({"setup": setup.label, "group": operator_group(event.key), "seconds": seconds})
        del trainee
    table = pd.DataFrame(rows).groupby(["setup", "group"], sort=False)["seconds"].sum().unstack(fill_value=0.0)
    total = table.sum(axis=1)
    shares = (100 * table.div(total, axis=0)).round(1)
    order = shares.mean().sort_values(ascending=False).index
    shares = shares[order].rename_axis(columns="% of the step")
    shares["profiled step ms"] = (1000 * total).round(0)
    return shares


def plot_step_phases(section: dict[str, Any], title: str | None = None):
    """Stacked bars: milliseconds per step in collate, forward, backward and optimizer, one bar per setup."""
    import matplotlib.pyplot as plt

    labels = list(section["setups"])
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(labels) + 1.2))
    left = np.zeros(len(labels))
    for phase in PHASES:
        values = np.array([1000 * section["setups"][s]["phase_seconds"][phase] for s in labels])
        ax.barh(labels, values, left=left, label=phase)
        left += values
    ax.invert_yaxis()
    ax.set_xlabel("ms per step (median of repetitions)")
    ax.set_title(title or f"Where a step's time goes (relative to {section['reference']!r})")
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    return ax


def load_speed_result(path: str | Path | None = None, device: str = "cuda") -> dict[str, Any] | None:
    """A benchmark JSON: `path`, or the first `training_speed-*-{device}.json` in the checkout's
    benchmarks/results/ (None when there is none, e.g. in an installed package)."""
    import json

    if path is None:
        folder = RESULTS
        found = sorted(folder.glob(f"training_speed-*-{device}.json")) if folder.is_dir() else []
        if not found:
            return None
        path = found[0]
    return json.loads(Path(path).read_text(encoding="utf-8"))


RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"  # a checkout's; absent when installed
PRECISION_PARITY = "precision_parity-quick-cpu.json"


def load_precision_parity(path: str | Path | None = None) -> dict[str, Any] | None:
    """`benchmarks/precision_parity.py`'s JSON: `path`, or the checkout's (None when there is none)."""
    import json

    path = Path(path) if path is not None else RESULTS / PRECISION_PARITY
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def precision_parity_table(result: dict[str, Any]):
    """One row per configuration: mean test accuracy over the seeds in fp32 and in bf16, the paired difference with
    its interval and Holm-adjusted p-value, and bf16's training-loop and evaluation time as a share of fp32's."""
    import pandas as pd

    rows = []
    for s in result["summary"]:
        d = s["bf16_minus_fp32"]
        rows.append(
            {
                "configuration": s["config"],
                "accuracy fp32": s["accuracy_fp32"],
                "accuracy bf16": s["accuracy_bf16"],
                "bf16 - fp32": d["difference"],
                "95% interval": f"{d['low']:+.3f} to {d['high']:+.3f}",
                "p (Holm)": d["p_holm"],
                "training loop bf16/fp32": s["train_time_ratio"],
                "evaluation bf16/fp32": s["eval_time_ratio"],
            }
        )
    return pd.DataFrame(rows).set_index("configuration")


def precision_parity_words(result: dict[str, Any]) -> list[str]:
    """What the precision comparison found, one sentence each, worded from its JSON."""
    summary = {s["config"]: s for s in result["summary"]}
    seeds = len(result["seeds"])
    cpu = result["cpu"]
    where = f"{cpu['name']} ({cpu['bf16_feature'] or 'no native bf16'}), {result['device']['count']} cores"
    lines = []
    trained = [s for s in summary.values() if s["train_time_ratio"]]
    if trained:
        ratios = sorted(s["train_time_ratio"] for s in trained)
        full = summary.get(REFERENCE)
        lead = (
            f"full fine-tuning's training loop ran {1 / full['train_time_ratio']:.2f}x faster in bf16 autocast than in "
            f"fp32 ({full['train_seconds_fp32']:.0f} s against {full['train_seconds_bf16']:.0f} s, median of {seeds} "
            "seeds), and "
            if full
            else ""
        )
        lines.append(
            f"On {where}: {lead}the training loops of the {len(trained)} configurations that train took "
            f"{ratios[0]:.2f}x to {ratios[-1]:.2f}x their fp32 time; evaluation took "
            f"{min(s['eval_time_ratio'] for s in summary.values()):.2f}x to "
            f"{max(s['eval_time_ratio'] for s in summary.values()):.2f}x."
        )
    worst = max(summary.values(), key=lambda s: abs(s["bf16_minus_fp32"]["difference"]))
    d = worst["bf16_minus_fp32"]
    significant = [s["config"] for s in summary.values() if s["bf16_minus_fp32"]["p_holm"] < 0.05]
    lines.append(
        f"Test accuracy, bf16 minus fp32 on the same {d['reviews']:,} reviews pooled over {seeds} seeds, moved by "
        f"{abs(d['difference']):.4f} at most ({worst['config']}: {d['difference']:+.4f}, 95% interval "
        f"{d['low']:+.4f} to {d['high']:+.4f}, resampling seeds and reviews)."
    )
    if significant:
        lines.append(
            f"After Holm's correction over the {len(summary)} configurations, bf16 differs from fp32 for "
            f"{', '.join(significant)}."
        )
    else:
        smallest = min(s["bf16_minus_fp32"]["p_holm"] for s in summary.values())
        lines.append(
            f"After Holm's correction over the {len(summary)} configurations there is no evidence of a difference "
            f"at this size for any of them (smallest adjusted p = {smallest:.2f})."
        )
    return lines


def verdict(sections: dict[str, dict[str, Any]]) -> list[str]:
    """The measured answers, one sentence each, worded from this notebook's own numbers."""
    lines = []
    conf = sections.get("configurations", {}).get("setups", {})
    if ADAPTER in conf and REFERENCE in conf:
        ratio = conf[ADAPTER]["relative_step_time"]
        flops = conf[ADAPTER]["flops_per_step"] / conf[REFERENCE]["flops_per_step"]
        lines.append(
            f"A LoRA step took {ratio:.2f}x a full fine-tuning step (its matrix-product FLOPs are "
            f"{flops:.2f}x): here LoRA is {'cheaper' if ratio < 1 else 'not cheaper'} per step."
        )
    if HEAD in conf:
        none = conf.get(UNTRAINED, {}).get("relative_step_time")
        lines.append(
            f"A head-only step took {conf['head']['relative_step_time']:.2f}x a full step"
            + (f"; a forward pass alone (configuration 'none', eval mode) took {none:.2f}x." if none else ".")
        )
    drop = sections.get("lora_dropout", {}).get("setups", {})
    if len(drop) == 2:
        label = [k for k in drop if k != f"{ADAPTER} dropout 0"][0]
        lines.append(
            f"LoRA dropout {label.split()[-1]} changed the step time by "
            f"{drop[label]['relative_step_time'] - 1:+.0%} against no dropout."
        )
    rank = {k: v["relative_step_time"] for k, v in sections.get("lora_rank", {}).get("setups", {}).items()}
    if rank:
        lines.append(
            "LoRA rank, step time relative to r=4: " + ", ".join(f"{k} {v:.2f}x" for k, v in rank.items()) + "."
        )
    freezing = sections.get("freezing", {}).get("setups", {})
    top, bottom = [k for k in freezing if "top" in k], [k for k in freezing if "bottom" in k]
    if top and bottom:
        a, b = freezing[top[0]]["relative_step_time"], freezing[bottom[0]]["relative_step_time"]
        lines.append(
            f"{top[0]} took {a:.2f}x a full step, {bottom[0]} {b:.2f}x"
            + (": backpropagation runs through every layer above the lowest trainable one." if b > a else ".")
        )
    head_eval = freezing.get(f"{HEAD}, frozen layers without dropout")
    head_dropout = freezing.get(f"{HEAD}, frozen layers with dropout") or freezing.get(HEAD)  # "head": older JSON
    if head_eval and head_dropout:
        lines.append(
            f"Without dropout in the frozen layers (bertpeft's default) a head-only step took "
            f"{head_eval['relative_step_time']:.2f}x a full step (with it, as the Trainer runs it: "
            f"{head_dropout['relative_step_time']:.2f}x)."
        )
    nodrop = sections.get("dropout", {}).get("setups", {})
    if {ADAPTER, f"{ADAPTER}, no dropout", f"{REFERENCE}, no dropout"} <= set(nodrop):
        a = nodrop[ADAPTER]["relative_step_time"]
        b = (
            nodrop[f"{ADAPTER}, no dropout"]["relative_step_time"]
            / nodrop[f"{REFERENCE}, no dropout"]["relative_step_time"]
        )
        flops = nodrop[ADAPTER]["flops_per_step"] / nodrop[REFERENCE]["flops_per_step"]
        share = f": dropout accounts for {(a - b) / (a - flops):.0%} of the gap" if a > flops else ""
        lines.append(
            f"With every dropout at 0 in both, a LoRA step took {b:.2f}x a full step, against {a:.2f}x with "
            f"dropout and {flops:.2f}x in matrix-product FLOPs{share}."
        )
    padding = sections.get("padding", {}).get("setups", {})
    seeds, ours = [k for k in padding if k.endswith(SEEDS)], [k for k in padding if k.endswith(OURS)]
    if seeds and ours:
        tokens = padding[seeds[0]]["padded_tokens_per_step"] / padding[ours[0]]["padded_tokens_per_step"]
        lines.append(
            f"The write-ups' padding to max_length made a step {1 / padding[ours[0]]['relative_step_time']:.1f}x "
            f"as long as our dynamic, length-grouped batches ({tokens:.1f}x the tokens)."
        )
    inference = sections.get("inference", {}).get("setups", {})
    if f"{ADAPTER} unmerged" in inference:
        lines.append(
            f"Inference: unmerged LoRA took {inference['lora unmerged']['relative_step_time']:.2f}x the "
            f"base model's time, merged {inference['lora merged']['relative_step_time']:.2f}x."
        )
    return lines


def save_sections(path: str | Path, bench: SpeedBench, sections: dict[str, dict[str, Any]]) -> Path:
    """The notebook's measurements as one JSON (config, versions, device, every raw step)."""
    path = Path(path)
    atomic_write_json(
        path,
        {
            "kind": "training_speed_notebook",
            "run_config": bench.config.to_dict(),
            "device": device_description(),
            "device_type": bench.device,
            "versions": package_versions(),
            "git": git_state(),
            "sections": sections,
            "verdict": verdict(sections),
        },
    )
    return path
