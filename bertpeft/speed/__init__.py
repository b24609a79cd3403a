"""Training speed, measured: the write-ups' recipe against ours, the six configurations against full fine-tuning, and
where a LoRA step's time goes.

A *step* is what the Trainer does with one batch: collate the sampled reviews (`DataCollatorWithPadding`), move
them to the device, forward, backward, clip the gradients, take a (fused) AdamW step, zero the gradients. We time
these steps directly, on batches made by the Trainer's own sampler and collator classes, instead of whole Trainer
runs: a step costs the same either way, and a measurement takes minutes instead of hours.

Every comparison builds its setups side by side in one process and times them interleaved (A B, then B A, ...),
for several repetitions; we report medians, and ratios paired within a repetition, so that load from other
processes moves both sides of a ratio alike.

Needs torch, transformers, peft and pandas only (no `datasets` when the reviews are a local file), so the same
code runs on a bare GPU machine.

The modules: `setups` (recipes, setups, named sections), `batches` (reviews and epoch batches), `trainee` (the
model, its counts and timed steps, `SpeedBench`), `timing` (interleaved comparisons), `benchmark` (the run, its
targets, tables and JSON) and `analysis` (notebook 05's helpers).
"""

from __future__ import annotations

from .analysis import (
    BERT_BASE_CASED_SHAPE,
    OPERATOR_GROUPS,
    load_precision_parity,
    load_speed_result,
    memory_table,
    model_shape,
    open_bench,
    operator_breakdown,
    operator_group,
    plot_step_phases,
    precision_parity_table,
    precision_parity_words,
    save_sections,
    theory_table,
    verdict,
)
from .batches import EpochBatches, encode_reviews, epoch_batches, make_sampler, read_reviews
from .benchmark import (
    TARGETS,
    check_targets,
    format_speed_table,
    measure_training_speed,
    result_filename,
    run_speed_benchmark,
    speed_table,
)
from .setups import DEFAULT_SECTIONS, DYNAMIC, OURS, SECTIONS, SEEDS, Recipe, Setup, make_recipe, section_setups
from .timing import compare, matmul_peak, repeat_progress, run_section
from .trainee import (
    CLOCKS,
    MAX_GRAD_NORM,
    PHASES,
    SpeedBench,
    Trainee,
    autocast,
    configure_model,
    counted_step,
    counts_by_width,
    load_speed_model,
    synchronize,
    without_dropout,
)

__all__ = [
    "BERT_BASE_CASED_SHAPE",
    "CLOCKS",
    "DEFAULT_SECTIONS",
    "DYNAMIC",
    "EpochBatches",
    "MAX_GRAD_NORM",
    "OPERATOR_GROUPS",
    "OURS",
    "PHASES",
    "Recipe",
    "SECTIONS",
    "SEEDS",
    "Setup",
    "SpeedBench",
    "TARGETS",
    "Trainee",
    "autocast",
    "check_targets",
    "compare",
    "configure_model",
    "counted_step",
    "counts_by_width",
    "encode_reviews",
    "epoch_batches",
    "format_speed_table",
    "load_precision_parity",
    "load_speed_model",
    "load_speed_result",
    "make_recipe",
    "make_sampler",
    "matmul_peak",
    "measure_training_speed",
    "memory_table",
    "model_shape",
    "open_bench",
    "operator_breakdown",
    "operator_group",
    "plot_step_phases",
    "precision_parity_table",
    "precision_parity_words",
    "read_reviews",
    "result_filename",
    "repeat_progress",
    "run_section",
    "run_speed_benchmark",
    "save_sections",
    "section_setups",
    "speed_table",
    "synchronize",
    "theory_table",
    "verdict",
    "without_dropout",
]
