"""Train and evaluate one configuration with the Hugging Face Trainer, and write its result JSON."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .benchmark import benchmark_result
from .config import RESULT_SETTINGS, ConfigError, RunConfig, entry
from .data import id2label_of, length_order, load_prepared
from .device import PeakMemory, accelerator, device_description, resolve_precision
from .layout import (
    RunDir,
    atomic_write_json,
    git_state,
    non_finite,
    package_versions,
    read_results,
    result_name,
)
from .manifest import clear, record_folder, result_differences, set_aside, write_json
from .metrics import make_compute_metrics
from .models import (
    apply_configuration,
    check_virtual_tokens,
    count_parameters,
    count_report,
    keep_frozen_parts_in_eval,
    load_base_model,
    load_tokenizer,
    model_skeleton,
    save_trained_weights,
)
from .probe import fit_probe
from .result import Result, read_result
from .stats import metric_intervals
from .tracking import finish_wandb, setup_wandb


def progress_mode(progress: str) -> str:
    """`auto` -> a tqdm bar in a terminal or interactive Jupyter, plain lines when output goes to a log."""
    if progress != "auto":
        return progress
    return "bar" if sys.stderr.isatty() or "ipykernel" in sys.modules else "lines"


def line_progress_callback():
    from transformers import TrainerCallback

    class LineProgress(TrainerCallback):
        """One plain line about every 10% of training: readable in papermill logs and CI output."""

        def on_train_begin(self, args, state, control, **kwargs):
            self.start, self.next_mark = time.perf_counter(), 0.1
            if state.is_world_process_zero:
                print(f"training: {state.max_steps} steps", flush=True)

        def on_step_end(self, args, state, control, **kwargs):
            done = state.global_step / max(state.max_steps, 1)
            if not state.is_world_process_zero:
                return
            if done + 1e-9 >= self.next_mark or state.global_step == state.max_steps:
                elapsed = time.perf_counter() - self.start
                eta = elapsed / max(done, 1e-9) - elapsed
                loss = next((f"{h['loss']:.4f}" for h in reversed(state.log_history) if "loss" in h), "-")
                print(
                    f"  step {state.global_step}/{state.max_steps} ({done:4.0%}) loss {loss} "
                    f"elapsed {elapsed:.0f}s eta {eta:.0f}s",
                    flush=True,
                )
                while self.next_mark <= done + 1e-9:
                    self.next_mark += 0.1

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            if metrics and "eval_accuracy" in metrics and state.is_world_process_zero:
                print(f"  eval at step {state.global_step}: accuracy {metrics['eval_accuracy']:.4f}", flush=True)

    return LineProgress()


def loop_timer_callback():
    from transformers import TrainerCallback
    from transformers.trainer_callback import ExportableState

    class LoopTimer(TrainerCallback, ExportableState):
        """Times the training loop alone: each optimizer step from the end of the one before (batch loading,
        forward, backward, optimizer step), leaving out the evaluations, logs and checkpoint saves the Trainer runs
        between steps. It also cancels the Trainer's own evaluation and checkpoint after the last step (transformers
        5 adds both with eval_strategy="steps"): the final evaluation runs once, explicitly, and a checkpoint of a
        finished training would only be deleted. Its step times so far are saved in each checkpoint's
        trainer_state.json (an `ExportableState`), so a resumed training counts the time before the interruption
        too (`steps_before`)."""

        def __init__(self):
            self.step_seconds: list[float] = []

        def state(self) -> dict:
            return {"args": {}, "attributes": {"step_seconds": list(self.step_seconds)}}

        def on_train_begin(self, args, state, control, **kwargs):
            self.mark = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            now = time.perf_counter()
            self.step_seconds.append(now - self.mark)
            self.mark = now
            if state.global_step >= state.max_steps:
                control.should_evaluate = False
                control.should_save = False

        def on_evaluate(self, args, state, control, **kwargs):
            self.mark = time.perf_counter()

        def on_save(self, args, state, control, **kwargs):
            self.mark = time.perf_counter()

        def on_log(self, args, state, control, **kwargs):
            self.mark = time.perf_counter()

    return LoopTimer()


def steps_before(checkpoint: str | None) -> list[float]:
    """The step times a training recorded before it saved `checkpoint` (see LoopTimer); none without one."""
    if not checkpoint:
        return []
    state = json.loads((Path(checkpoint) / "trainer_state.json").read_text())
    return list(state.get("stateful_callbacks", {}).get("LoopTimer", {}).get("attributes", {}).get("step_seconds", []))


def epoch_order_callback(data_seed: int):
    from transformers import TrainerCallback

    class EpochOrder(TrainerCallback):
        """Makes each epoch's batch order a function of `data_seed` and the epoch alone. With
        train_sampling_strategy="group_by_length" the Trainer's LengthGroupedSampler draws its order from the global
        random state when an epoch begins; a training resumed mid-epoch begins that epoch from another state, so it
        would see the epoch's remaining reviews in another order than the uninterrupted one. (The "random" strategy
        is already seeded per epoch by accelerate.)"""

        def on_epoch_begin(self, args, state, control, train_dataloader=None, **kwargs):
            import torch
            from transformers.trainer_pt_utils import LengthGroupedSampler

            batches = getattr(train_dataloader, "batch_sampler", None)
            sampler = getattr(batches, "sampler", None) or getattr(
                getattr(batches, "batch_sampler", None), "sampler", None
            )
            if isinstance(sampler, LengthGroupedSampler):
                epoch = math.floor(state.epoch + 1e-6)  # the epoch beginning now (resumed: the one cut off)
                sampler.generator = torch.Generator().manual_seed(data_seed * 1_000_003 + epoch)

    return EpochOrder()


def adalora_callback():
    from transformers import TrainerCallback

    class AdaLoraBudget(TrainerCallback):
        """AdaLoRA reallocates its rank budget from the gradients after each optimizer step
        (`update_and_allocate`, which PEFT leaves to the training loop); the Trainer calls this before it clears
        them."""

        def on_optimizer_step(self, args, state, control, model=None, **kwargs):
            model = getattr(model, "module", model)  # unwrapped under several processes
            model.base_model.update_and_allocate(state.global_step)

    return AdaLoraBudget()


def step_statistics(step_seconds: list[float], warmup: int = 2) -> dict[str, float | None]:
    """Median and spread (10th and 90th percentiles) of the step times after the first `warmup` steps (the first
    steps allocate memory and pick kernels); all steps when there are too few to drop any."""
    steady = step_seconds[warmup:] if len(step_seconds) > 2 * warmup else step_seconds
    if not steady:
        return {"step_seconds_median": None, "step_seconds_p10": None, "step_seconds_p90": None}
    p10, median, p90 = np.percentile(steady, [10, 50, 90])
    return {"step_seconds_median": float(median), "step_seconds_p10": float(p10), "step_seconds_p90": float(p90)}


@dataclass(frozen=True)
class Runtime:
    """What a Trainer takes from where it runs rather than from the experiment: the `TrainingArguments` for the
    checkpoint folder, run name, precision, device, W&B and progress display (`arguments`), the metrics function,
    and the padding multiple that suits the precision. `training_arguments` adds the experiment's own arguments."""

    arguments: dict[str, Any]
    compute_metrics: Any
    pad_to_multiple_of: int | None


def runtime_for(config: RunConfig, precision: str, report_to: list[str], num_labels: int = 2) -> Runtime:
    device = accelerator()
    name = result_name(config.configuration, config.seed)
    arguments = {
        "output_dir": str(RunDir(config).checkpoints_of(name)),
        "run_name": config.configuration if len(config.seeds) == 1 else name,
        "report_to": report_to or "none",
        "fp16": precision == "fp16",
        "bf16": precision == "bf16",
        "use_cpu": device == "cpu",
        "dataloader_pin_memory": device == "cuda",
        "disable_tqdm": progress_mode(config.progress) != "bar",
        # Our loss is a mean over the batch, not a sum over tokens: with True, transformers multiplies it by the
        # number of processes (doubling logged losses and gradients under 2 processes).
        "average_tokens_across_devices": False,
        "ddp_find_unused_parameters": False,  # frozen weights have requires_grad off; every trainable one is used
        # The Trainer would log a NaN or infinite step loss as its window's mean: shown as it is, a training that
        # diverges is refused with the step it began at (see `check_finite`), not written with a tidy loss curve.
        "logging_nan_inf_filter": False,
    }
    return Runtime(arguments, make_compute_metrics(num_labels), 8 if precision == "fp16" else None)


def training_arguments(config: RunConfig, runtime: Runtime):
    """The `TrainingArguments` of one training: the experiment's settings from `config`, the rest from `runtime`.
    Notebook 02 shows this function as it runs."""
    from transformers import TrainingArguments

    return TrainingArguments(
        learning_rate=config.learning_rate_for,  # this configuration's rate (frozen layers tolerate larger ones)
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.train_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation,  # >1 on an Apple GPU: same batch, less memory
        per_device_eval_batch_size=config.eval_batch_size,
        warmup_steps=config.warmup_ratio,  # a float below 1 is a ratio of the total steps in transformers 5
        weight_decay=config.weight_decay,
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",  # less padding
        eval_strategy="steps",  # the validation reviews every eval_steps steps
        eval_steps=config.eval_steps,
        save_strategy="steps",  # a checkpoint at each evaluation: an interrupted training resumes from it
        save_steps=config.eval_steps,
        save_total_limit=1,
        logging_steps=config.logging_steps,
        seed=config.seed,
        data_seed=config.data_seed,
        **runtime.arguments,
    )


def make_trainer(model, config: RunConfig, data, tokenizer, runtime: Runtime):
    """The Trainer for `model` (already prepared for its configuration): the one every training uses (notebook 02
    shows it)."""
    from transformers import DataCollatorWithPadding, Trainer

    return Trainer(
        model=model,
        args=training_arguments(config, runtime),
        train_dataset=data["train"],
        eval_dataset=data["validation"],
        data_collator=DataCollatorWithPadding(tokenizer, pad_to_multiple_of=runtime.pad_to_multiple_of),
        compute_metrics=runtime.compute_metrics,  # accuracy, precision, recall and F1 (make_compute_metrics)
        processing_class=tokenizer,
    )


def last_checkpoint(folder: Path) -> str | None:
    """The newest complete checkpoint in `folder`, or None. The Trainer writes a checkpoint's trainer_state.json
    last, so a folder without a readable one was cut off by a kill while being written: it cannot be resumed from
    (transformers' own get_last_checkpoint would pick it) and is removed, with a line saying so."""
    complete = []
    for path in sorted(folder.glob("checkpoint-*")) if folder.is_dir() else []:
        step = path.name.rpartition("-")[2]
        if not (path.is_dir() and step.isdigit()):
            continue
        try:
            json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            print(f"removing {path.name}: it was cut off while being written", flush=True)
            shutil.rmtree(path, ignore_errors=True)
            continue
        refused = unsafe_pickle(path)
        if refused:
            where = set_aside(folder.parent.parent, path)
            print(
                f"not resuming from {path.name}: {refused} holds more than tensors (a pickle that could run code when "
                f"loaded); set aside as {where}",
                flush=True,
            )
            continue
        complete.append((int(step), str(path)))
    return max(complete)[1] if complete else None


# What the Trainer loads when it resumes from a checkpoint with torch.load (weights_only=True); training_args.bin
# it writes but never reads back.
RESUMED_PICKLES = ("rng_state*.pth", "optimizer.pt", "scheduler.pt", "scaler.pt", "pytorch_model.bin")


def unsafe_pickle(checkpoint: Path) -> str | None:
    """The first file the Trainer would unpickle on resuming from `checkpoint` that holds anything but tensors and
    plain containers (`torch.load(weights_only=True)` refuses it before any of its code runs), else None."""
    import torch
    from transformers.trainer_pt_utils import safe_globals  # the numpy types the Trainer allows in rng_state

    for pattern in RESUMED_PICKLES:
        for path in sorted(checkpoint.glob(pattern)):
            try:
                with safe_globals():
                    torch.load(path, map_location="cpu", weights_only=True)
            except Exception:  # noqa: BLE001 - an UnpicklingError, or a file that is no pickle at all
                return path.name
    return None


CHECKPOINT_SETTINGS = "bertpeft_settings.json"


def claim_checkpoints(folder: Path, config: RunConfig) -> None:
    """Make `folder` hold only checkpoints of a training with `config`'s settings: checkpoints left by a training
    with other settings (another rate, epochs, sample...) are removed with a line saying why, since resuming from
    them would mix two trainings; then the settings are recorded for the next resume to compare."""
    settings = {k: getattr(config, k) for k in RESULT_SETTINGS} | {"learning_rate": config.learning_rate_for}
    settings = json.loads(json.dumps(settings, default=str))
    recorded = folder / CHECKPOINT_SETTINGS
    if folder.exists():
        try:
            before = json.loads(recorded.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            before = {}  # checkpoints whose settings are unknown cannot be trusted either
        if before != settings:
            if any(folder.glob("checkpoint-*")):  # the Trainer makes the folder before it saves anything
                changed = [k for k in settings if before.get(k) != settings[k]]
                print(
                    f"removing the checkpoints in {folder}: made with other settings ({', '.join(changed)})", flush=True
                )
            clear(RunDir(config).root, folder)
    record_folder(RunDir(config).root, folder)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(recorded, settings)


@dataclass
class Fitted:
    """One training of a configuration at one learning rate: the Trainer (holding the trained model), its parameter
    counts and the timings of its loop."""

    trainer: Any
    report: dict[str, Any]
    timings: dict[str, Any]
    rate: float | None


def with_validation(data):
    """`data` as the Trainer gets it: the validation split for evaluations during training, or the test split
    when the run has none (n_validation 0)."""
    if "validation" in data:
        return data
    return {**data, "validation": data["test"]}


def add_bookkeeping(trainer, config: RunConfig):
    """The callbacks beside the Trainer's own: progress as plain lines where asked (one per 10% instead of a print
    of every log), the loop timer (returned), the epoch order of length-grouped batches and, for AdaLoRA, its
    rank budget."""
    from transformers import PrinterCallback

    if progress_mode(config.progress) == "lines":
        trainer.remove_callback(PrinterCallback)
        trainer.add_callback(line_progress_callback())
    timer = loop_timer_callback()
    trainer.add_callback(timer)
    trainer.add_callback(epoch_order_callback(config.data_seed))
    if entry(config.configuration).peft == "AdaLoraConfig":
        trainer.add_callback(adalora_callback())
    return timer


def checkpoint_to_resume(trainer, config: RunConfig, timer, resume: bool = True) -> str | None:
    """The last complete checkpoint of this training (its settings checked against `config` first, and its folder
    recorded as bertpeft's), with the step times it recorded given back to `timer`; None for a training that starts
    afresh (or with `resume` False)."""
    # One process checks and records the checkpoints' settings; the others look for a checkpoint after it.
    with trainer.args.main_process_first(desc="checking checkpoints"):
        if trainer.is_world_process_zero():
            claim_checkpoints(Path(trainer.args.output_dir), config)
    checkpoint = last_checkpoint(Path(trainer.args.output_dir)) if resume else None
    if checkpoint:
        print(f"resuming {config.configuration} from {checkpoint}")
    timer.step_seconds = steps_before(checkpoint)
    return checkpoint


def loop_timings(trainer, timer, train, output, checkpoint: str | None) -> dict[str, Any]:
    """What the loop timer measured: `train_seconds` is the optimizer steps alone (see LoopTimer); the Trainer's
    own `train_runtime` also holds the evaluations and saves in between, and is kept apart for comparison."""
    seconds = sum(timer.step_seconds)
    epochs = trainer.args.num_train_epochs
    tokens = sum(len(ids) for ids in train["input_ids"]) * epochs
    return {
        "train_seconds": seconds,
        "train_samples_per_second": len(train) * epochs / max(seconds, 1e-9),
        "train_tokens_per_second": tokens / max(seconds, 1e-9),
        "train_steps": trainer.state.global_step,
        "timed_steps": len(timer.step_seconds),
        **step_statistics(timer.step_seconds),
        "trainer_runtime_seconds": output.metrics["train_runtime"],
        "resumed_from": checkpoint,
    }


def fit(config: RunConfig, data, tokenizer, meta, runtime: Runtime, resume: bool = True) -> Fitted:
    """Load a fresh base model, prepare it for `config.configuration` and train it with its Trainer (only build it,
    for `none`). With `resume`, an interrupted training continues from its last complete checkpoint."""
    from transformers import set_seed

    started = time.perf_counter()
    set_seed(config.seed)  # the new head's initial weights
    base = load_base_model(config.model, meta["num_labels"], id2label_of(meta))
    total = count_parameters(base)
    model = apply_configuration(base, config)  # freeze what does not train, or wrap with a PEFT method
    report = count_report(model, total, config.configuration)
    trainer = make_trainer(model, config, with_validation(data), tokenizer, runtime)
    timer = add_bookkeeping(trainer, config)
    timings = {"setup_seconds": time.perf_counter() - started, "train_seconds": 0.0, "train_steps": 0}
    timings["train_samples_per_second"] = None
    probe = entry(config.configuration).family == "probe"
    trains = report["trainable_params"] > 0 and not probe
    if probe:  # no gradient step: a logistic regression on the frozen encoder's embeddings
        bar = progress_mode(config.progress) == "bar"
        timings.update(fit_probe(trainer.model, data, tokenizer, config.eval_batch_size, meta["num_labels"], bar))
    elif trains:
        if not config.frozen_dropout:  # the Trainer puts every module in train mode: the frozen ones go back to eval
            keep_frozen_parts_in_eval(model)
        checkpoint = checkpoint_to_resume(trainer, config, timer, resume)
        output = trainer.train(resume_from_checkpoint=checkpoint)
        timings.update(loop_timings(trainer, timer, data["train"], output, checkpoint))
    # With group_by_length the eval sampler would reorder rows too: predictions in row order from here on, so
    # predictions[i] belongs to row i.
    if trainer.args.train_sampling_strategy == "group_by_length":
        trainer.args.train_sampling_strategy = "random"
    return Fitted(trainer, report, timings, trainer.args.learning_rate if trains else None)


def tune_learning_rate(config: RunConfig, data, tokenizer, meta, precision: str) -> tuple[Fitted, list[dict]]:
    """Train at each of `config.lr_factors` times the configuration's default rate and keep the training with the
    best validation accuracy (the first on a tie). Only the validation split is read; the kept training is the
    final one, so the chosen rate costs no retraining."""
    default = config.replace(learning_rate=None).learning_rate_for
    best, grid = None, []
    # a search starts over: no trial resumes another's checkpoint
    clear(RunDir(config).root, RunDir(config).checkpoints_of(result_name(config.configuration, config.seed)))
    for factor in config.lr_factors:
        rate = float(f"{default * factor:.3g}")
        trial = config.replace(learning_rate=rate)
        print(f"{config.configuration}: trying learning rate {rate:g} ({factor:.3g}x the default)", flush=True)
        runtime = runtime_for(trial, precision, [], meta["num_labels"])
        fitted = fit(trial, data, tokenizer, meta, runtime, resume=False)
        accuracy = fitted.trainer.evaluate(data["validation"], metric_key_prefix="validation")["validation_accuracy"]
        grid.append({"learning_rate": rate, "factor": factor, "validation_accuracy": accuracy, **fitted.timings})
        print(f"  validation accuracy {accuracy:.4f}", flush=True)
        if best is None or accuracy > best[0]:
            best = (accuracy, fitted)
    chosen = best[1]
    print(f"{config.configuration}: learning rate {chosen.rate:g} chosen on the validation split", flush=True)
    return chosen, grid


def trainings_needed(config: RunConfig) -> int:
    """How many trainings a series of `config` costs: per configuration that trains, one per seed, and with
    `tune_lr` one per rate of the grid instead of one on its first seed (the search keeps its best training; the
    other seeds reuse the rate, see `rate_tuned_earlier`). The embeddings baseline fits once per seed."""
    total = 0
    for name in config.configurations:
        family = entry(name).family
        if family == "none":
            continue
        searched = config.tune_lr and family != "probe"
        total += (len(config.lr_factors) if searched else 1) + len(config.seeds) - 1
    return total


def rate_tuned_earlier(config: RunConfig) -> dict[str, Any] | None:
    """The rate a search already chose for `config.configuration` in this run folder, with another seed and the same
    result settings: `{"learning_rate", "seed"}`, or None. A rate is chosen once per configuration (on its first
    seed); the other seeds train at it, so their spread comes from the seeds alone and the search is not paid three
    times."""
    for result in read_results(config.run_dir):
        if result.config != config.configuration or result.seed == config.seed:
            continue
        # the same settings as the run folder's other results must share (the rate aside: both searched it)
        if result.learning_rate_grid and not result_differences(config, result):
            return {"learning_rate": result.learning_rate, "seed": result.seed}
    return None


def train_configuration(config: RunConfig, benchmark: bool = True) -> Result:
    """Train `config.configuration` (or only evaluate, for `none`), evaluate the test split once, write the result
    JSON: the one training path of `bertpeft train`, `bertpeft run` and notebook 02, which shows the code it runs
    (`apply_configuration`, `make_trainer`, `fit`, `predict_by_length`). With `config.tune_lr` the learning rate is
    first chosen on the validation split (see `tune_learning_rate`; once per configuration: another seed's choice in
    the run folder is reused, see `rate_tuned_earlier`); the test split is read only after that. Resumes an interrupted training from its last
    checkpoint (not a rate search, which starts over)."""
    import torch

    # A configuration the model cannot take (head+N deeper than the model, LoRA on modules it lacks) fails here,
    # before any data is prepared: a weightless skeleton of the model is enough to know.
    apply_configuration(model_skeleton(config.model, configuration=config.configuration), config)
    check_virtual_tokens(config)
    family = entry(config.configuration).family
    trains = family != "none"
    device = accelerator()
    precision = resolve_precision(config.precision, device)
    report_to = setup_wandb(config.report_to, config.run_dir)
    # Under several processes the main one builds the tiny model and the prepared data; the others then read them.
    # (TrainingArguments set up the process group that main_process_first waits on.)
    with training_arguments(config, runtime_for(config, precision, report_to)).main_process_first(desc="data"):
        tokenizer = load_tokenizer(config.model)
        data, meta = load_prepared(config, tokenizer)
    num_labels = meta["num_labels"]
    tunes = trains and config.tune_lr and family != "probe"  # the probe chooses its own C instead
    grid, earlier = None, (rate_tuned_earlier(config) if tunes else None)
    with PeakMemory(device) as memory:  # on an Apple GPU a sampled peak: MPS keeps none
        try:
            if earlier:
                print(
                    f"{config.configuration}: learning rate {earlier['learning_rate']:g}, chosen on the validation split"
                    f" with seed {earlier['seed']}",
                    flush=True,
                )
                trial = config.replace(learning_rate=earlier["learning_rate"])
                fitted = fit(trial, data, tokenizer, meta, runtime_for(trial, precision, report_to, num_labels))
            elif tunes:
                fitted, grid = tune_learning_rate(config, data, tokenizer, meta, precision)
            else:
                runtime = runtime_for(config, precision, report_to, num_labels)
                fitted = fit(config, data, tokenizer, meta, runtime)
            trainer, report, timings = fitted.trainer, fitted.report, fitted.timings
            # The one evaluation of the test split (the Trainer's own after the last step is cancelled by LoopTimer).
            start = time.perf_counter()
            prediction = predict_by_length(trainer, data["test"])
            timings["eval_seconds"] = time.perf_counter() - start
            # Into the history the JSON's eval curve reads; not trainer.log(), which would send W&B the metrics a
            # second time (its callback already logged them on predict).
            trainer.state.log_history.append({**prediction.metrics, "step": trainer.state.global_step, "split": "test"})
        finally:
            if report_to:
                finish_wandb()
    metrics = {
        k.removeprefix("eval_"): v
        for k, v in prediction.metrics.items()
        if k.removeprefix("eval_") in ("accuracy", "precision", "recall", "f1", "loss")
    }
    predictions = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    labels = [int(label) for label in data["test"]["label"]]
    # 95% intervals over the test reviews: Wilson for accuracy, a bootstrap for F1 (seeded, so reproducible)
    intervals = metric_intervals(predictions.argmax(-1), labels, num_labels, seed=config.seed)
    fields = {
        "name": result_name(config.configuration, config.seed),
        "config": config.configuration,
        "seed": config.seed,
        "profile": config.profile,
        "model": config.model,
        **{k: report[k] for k in ("trainable_params", "total_params", "trainable_percent", "adapter_params")},
        **metrics,
        **intervals,
        **timings,
        "learning_rate": fitted.rate,
        "learning_rate_grid": grid,
        "learning_rate_tuned_with_seed": earlier["seed"] if earlier else (config.seed if grid else None),
        "n_validation": len(data["validation"]) if "validation" in data else 0,
        "numeric_precision": precision,
        "peak_memory_mb": memory.mb,
        "device": device_description(),
        "world_size": trainer.args.world_size,
        "num_labels": num_labels,
        "id2label": meta["id2label"],
        "loss_curve": [{"step": h["step"], "loss": h["loss"]} for h in trainer.state.log_history if "loss" in h],
        "eval_curve": eval_curve(trainer.state.log_history, "validation" if "validation" in data else "test"),
        # every pass over the test reviews, in order: the final evaluation here; the benchmark adds its own below
        "test_passes": ["final evaluation"],
        "test_predictions": predictions.argmax(-1).tolist(),
        "test_labels": labels,
        "test_probabilities": torch.softmax(torch.as_tensor(predictions).float(), -1).max(-1).values.tolist(),
        "run_config": config.to_dict(),
        "versions": package_versions(),
        "git": git_state(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    result = Result.from_dict(fields)
    check_finite(result, config, precision, trainer)
    if trainer.is_world_process_zero():
        if trains:
            weights = RunDir(config).weights(result.name)
            clear(RunDir(config).root, weights)  # an earlier training's weights, bertpeft's only
            record_folder(RunDir(config).root, weights)
            save_trained_weights(trainer.model, weights)
        if benchmark:
            start = time.perf_counter()
            measured = benchmark_result(
                trainer.model, tokenizer, data["test"], config, num_labels, reference=result.test_predictions
            )
            result = dataclasses.replace(
                result,
                **measured,
                benchmark_seconds=time.perf_counter() - start,
                test_passes=[*result.test_passes, "independent benchmark"],
            )
        write_json(RunDir(config).root, RunDir(config).result(config.configuration, config.seed), result.to_dict())
        clear(RunDir(config).root, trainer.args.output_dir)
    return result


def predict_by_length(trainer, dataset, prefix: str = "eval"):
    """`trainer.predict` over `dataset` in batches of similar length (rows sorted by length, so each batch pads to
    its own longest review), with predictions and labels back in row order: the same metrics as in row order, from
    less padding (the quick profile's 1,000 test reviews: 95,360 tokens fed instead of 128,000)."""
    from transformers.trainer_utils import PredictionOutput

    order = length_order(dataset)
    out = trainer.predict(dataset.select(order), metric_key_prefix=prefix)
    rows = np.argsort(order)  # where each row's prediction landed

    def in_row_order(values):
        if values is None:
            return None
        return tuple(in_row_order(v) for v in values) if isinstance(values, tuple) else values[rows]

    return PredictionOutput(in_row_order(out.predictions), in_row_order(out.label_ids), out.metrics)


class DivergedError(ConfigError):
    """A training whose loss or outputs became NaN or infinite: no result is written; the message says what to
    change."""


def check_finite(result: Result, config: RunConfig, precision: str, trainer) -> None:
    """Refuse a result that holds NaN or Infinity (a diverged training: its weights are not numbers any more),
    naming where it began, before anything is saved; its checkpoints, of the same weights, are removed."""
    bad = non_finite(result.to_dict())
    if not bad:
        return
    steps = [h["step"] for h in result.loss_curve if not math.isfinite(h["loss"])]
    where, value = bad[0]
    named = {"loss": "the loss on the test reviews", "test_probabilities": "the predicted probabilities"}
    began = (
        f"the training loss became {value} at step {steps[0]}"
        if steps
        else f"{named.get(where.split('[')[0], where)} became {value}"
    )
    rate = result.learning_rate
    fix = (
        f"train it with a lower learning rate than {rate:g} (--learning-rate)"
        if rate is not None
        else f"check the weights of {config.model}"
    )
    if precision == "fp16":
        fix += " or in fp32 (--precision fp32)"
    if trainer.is_world_process_zero():
        clear(RunDir(config).root, trainer.args.output_dir)
    raise DivergedError(f"{result.name} diverged: {began}, so no result was written; {fix}")


def finished_result(config: RunConfig) -> Result | None:
    """The result of `config`'s configuration and seed if the run folder holds one, else None."""
    path = RunDir(config).result(config.configuration, config.seed)
    if not path.is_file():
        return None
    return read_result(path)


def eval_curve(log_history: list[dict[str, Any]], periodic_split: str = "validation") -> list[dict[str, Any]]:
    """Evaluation accuracy per step and the split it was measured on: the evaluations during training read
    `periodic_split`, the final one the test split. Each step appears once (the last entry for a step wins)."""
    by_step = {
        h["step"]: (h["eval_accuracy"], h.get("split", periodic_split))
        for h in log_history
        if "eval_accuracy" in h and "step" in h
    }
    return [{"step": step, "accuracy": accuracy, "split": split} for step, (accuracy, split) in by_step.items()]


def summary(result: Result) -> str:
    r = result
    metrics = f"accuracy {r.accuracy:.4f}  precision {r.precision:.4f}  recall {r.recall:.4f}  f1 {r.f1:.4f}"
    return f"{r.config} (seed {r.seed}): {metrics}  trainable {r.trainable_params:,}  train {r.train_seconds:.1f}s"
