"""The model side: models set up for a `Setup`, their FLOP and memory counts, timed steps, `SpeedBench`."""

from __future__ import annotations

import copy
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..config import ConfigError, RunConfig, unfrozen_layers
from ..data import padding_waste
from ..device import accelerator, autocast, resolve_precision, synchronize
from ..models import (
    apply_configuration,
    encoder_layers,
    frozen_parts,
    load_base_model,
    load_tokenizer,
    resolve_model_source,
    train_task_head,
)
from .batches import EpochBatches, encode_reviews, epoch_batches, read_reviews
from .setups import Recipe, Setup, make_recipe

PHASES = ("collate", "forward", "backward", "optimizer")
MAX_GRAD_NORM = 1.0  # the Trainer's default clipping, part of every step it takes
# "wall": elapsed time, what a user waits for. "cpu": this process's CPU time, which other processes on a shared
# machine do not inflate; it equals wall time for a one-thread run on an idle machine (CPU only, threads=1).
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


# ------------------------------------------------------------------------------------------------------- the model
def load_speed_model(model: str, num_labels: int, seed: int = 0):
    """`models.load_base_model`, or random weights when `model` is a folder with a config but no weights."""
    source = Path(resolve_model_source(model))
    if source.is_dir() and not any(source.glob("*.safetensors")) and not any(source.glob("*.bin")):
        import torch
        from transformers import AutoConfig, AutoModelForSequenceClassification

        torch.manual_seed(seed)
        return AutoModelForSequenceClassification.from_config(AutoConfig.from_pretrained(source, num_labels=num_labels))
    return load_base_model(model, num_labels)


def configure_model(base, config: RunConfig, setup: Setup):
    """A copy of `base` set up for `setup`: the configuration's trainable weights (top or bottom layers for
    head+N), LoRA rank/dropout overrides, merged LoRA for inference."""
    overrides = {k: v for k, v in (("lora_r", setup.lora_r), ("lora_dropout", setup.lora_dropout)) if v is not None}
    run = config.replace(configuration=setup.configuration, **overrides)
    model = apply_configuration(copy.deepcopy(base), run)
    if setup.layers == "bottom" and unfrozen_layers(setup.configuration):
        layers = encoder_layers(model)
        model.requires_grad_(False)
        train_task_head(model)
        for layer in layers[: unfrozen_layers(setup.configuration)]:
            layer.requires_grad_(True)
    if setup.merged:
        model = model.merge_and_unload()
    if not setup.dropout:
        without_dropout(model)
    return model


def without_dropout(model) -> int:
    """Set every dropout rate in `model` to 0: the model's own layers, BERT's attention (it passes its dropout
    module's rate to the attention kernel) and PEFT's LoRA dropout. Returns how many modules changed."""
    from torch import nn

    changed = 0
    for module in model.modules():
        if isinstance(module, nn.Dropout) and module.p:
            module.p = 0.0
            changed += 1
    return changed


def counted_step(meta, batch_size: int, width: int, trains: bool) -> dict[str, float]:
    """FLOPs of one step and the bytes it keeps for backward, counted on a weightless copy of the model (`meta`,
    from `copy.deepcopy(model).to("meta")`): costs no arithmetic.

    FLOPs are those of matrix products (torch's FlopCounterMode), forward and backward; saved bytes assume fp32."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    params = {id(p) for p in meta.parameters()}
    saved: dict[int, int] = {}

    def pack(tensor):
        base = tensor._base if tensor._base is not None else tensor
        if id(base) not in params:
            saved[id(base)] = base.untyped_storage().nbytes()
        return tensor

    ids = torch.zeros(batch_size, width, dtype=torch.long, device="meta")
    labels = torch.zeros(batch_size, dtype=torch.long, device="meta")
    counter = FlopCounterMode(display=False)
    # No attention mask: the mask only changes values, and building one needs real data.
    with counter, torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        if trains:
            meta.train()
            meta(input_ids=ids, labels=labels).loss.backward()
            meta.zero_grad(set_to_none=True)
        else:
            meta.eval()
            with torch.no_grad():
                meta(input_ids=ids)
    return {"flops": float(counter.get_total_flops()), "saved_bytes": float(sum(saved.values()))}


def counts_by_width(model, batch_size: int, trains: bool, widths=(8, 16, 24)):
    """`counted_step` as a function of the padded width, from three counts at small widths: a BERT step's FLOPs
    and saved bytes are exactly c + a*w + b*w**2 (attention is the w**2 term), so three points fit them."""
    meta = copy.deepcopy(model).to("meta")
    counts = [counted_step(meta, batch_size, w, trains) for w in widths]
    powers = np.vander(np.array(widths, dtype=float), 3)
    fits = {k: np.linalg.solve(powers, np.array([c[k] for c in counts])) for k in counts[0]}
    return lambda width: {k: float(np.polyval(fit, width)) for k, fit in fits.items()}


class Trainee:
    """One setup's model on the device with its optimizer (and gradient scaler for fp16), ready to take steps."""

    def __init__(self, bench: SpeedBench, setup: Setup, warmup: bool = True):
        import torch
        from transformers import DataCollatorWithPadding

        self.setup, self.device, self.config = setup, bench.device, bench.config
        self.clock = CLOCKS[bench.clock]
        recipe = make_recipe(setup.recipe, bench.config, bench.device)
        self.precision = _check_precision(setup.precision or recipe.precision, bench.device)
        if setup.precision and setup.precision != recipe.precision:
            recipe = Recipe(
                recipe.name,
                recipe.padding,
                recipe.sampler,
                self.precision,
                8 if self.precision == "fp16" and recipe.padding == "dynamic" else None,
            )
        self.batches = bench.batches(recipe, setup.batch_size or bench.config.train_batch_size)
        self.collate = DataCollatorWithPadding(bench.tokenizer, pad_to_multiple_of=recipe.pad_to_multiple_of)
        model = configure_model(bench.base, bench.config, setup)
        self.trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        self.trains = setup.trains and self.trainable > 0
        per_width = counts_by_width(model, self.batches.batch_size, self.trains)
        self.counts = {p: per_width(self.batches.widths[p]) for p in self._counted_positions()}
        full = [w for w, b in zip(self.batches.widths, self.batches.batches) if len(b) == self.batches.batch_size]
        self.epoch_flops = statistics.fmean(per_width(w)["flops"] for w in full)
        self.weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
        if bench.device == "cuda":
            synchronize(bench.device)
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
        self.model = model.to(bench.device).train(self.trains)
        if setup.frozen_layers_in_eval(bench.config):  # once: nothing here puts the model back in train mode
            for part in frozen_parts(self.model):
                part.eval()
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = self.scaler = None
        if self.trains:
            fused = bench.device in ("cuda", "cpu")  # the Trainer's default optim is adamw_torch_fused (torch>=2.8)
            self.optimizer = torch.optim.AdamW(
                self.params,
                lr=bench.config.learning_rate_for or 5e-5,
                weight_decay=bench.config.weight_decay,
                fused=fused,
            )
            if self.precision == "fp16":
                self.scaler = torch.amp.GradScaler(bench.device)
        self.measured_peak_mb = None
        if warmup:
            self.warm_up()
            if bench.device == "cuda":
                synchronize(bench.device)
                self.measured_peak_mb = (torch.cuda.max_memory_allocated() - before) / 2**20

    def _counted_positions(self) -> list[int]:
        self.widest = max(
            range(len(self.batches.batches)), key=lambda p: (self.batches.widths[p], len(self.batches.batches[p]))
        )
        return sorted({*self.batches.timed, self.widest})

    def warm_up(self) -> None:
        """Untimed steps that allocate optimizer state and warm kernels. On CUDA two steps at the epoch's widest
        batch also give the peak memory; on a CPU one step at the narrowest timed batch keeps it cheap."""
        if self.device == "cuda":
            for _ in range(2):
                self.step(self.batches.rows(self.widest))
        else:
            self.step(self.batches.rows(min(self.batches.timed, key=lambda p: self.batches.widths[p])))

    def step(self, rows: list[dict]) -> dict[str, float]:
        """One training step (or one forward pass when the setup does not train), timed by phase in seconds."""
        import torch

        clock = self.clock
        wall = time.perf_counter()
        marks = [clock()]
        batch = {k: v.to(self.device) for k, v in self.collate(rows).items()}
        synchronize(self.device)
        marks.append(clock())
        if not self.trains:
            with torch.inference_mode(), autocast(self.device, self.precision):
                self.model(**batch)
            synchronize(self.device)
            marks += [clock()] * 3
        else:
            with autocast(self.device, self.precision):
                loss = self.model(**batch).loss
            synchronize(self.device)
            marks.append(clock())
            (self.scaler.scale(loss) if self.scaler else loss).backward()
            synchronize(self.device)
            marks.append(clock())
            if self.scaler:
                self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.params, MAX_GRAD_NORM)
            if self.scaler:
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            synchronize(self.device)
            marks.append(clock())
        phases = {name: marks[i + 1] - marks[i] for i, name in enumerate(PHASES)}
        return {**phases, "step": marks[-1] - marks[0], "wall": time.perf_counter() - wall}

    def memory(self) -> dict[str, Any]:
        """Peak memory of a step at the epoch's widest batch: measured on CUDA; counted everywhere (weights, fp32
        gradients and AdamW's two moments of the trainable weights, activations kept for backward)."""
        counted = {
            "weights_mb": self.weight_bytes / 2**20,
            "gradients_and_optimizer_mb": 3 * 4 * self.trainable / 2**20 if self.trains else 0.0,
            "activations_mb": self.counts[self.widest]["saved_bytes"] / 2**20,
            "at_width": self.batches.widths[self.widest],
        }
        counted["total_mb"] = counted["weights_mb"] + counted["gradients_and_optimizer_mb"] + counted["activations_mb"]
        return {"measured_peak_mb": self.measured_peak_mb, "counted": counted}


def _check_precision(precision: str, device: str) -> str:
    if precision == "fp16" and device not in ("cuda", "mps"):
        raise ConfigError(f"precision fp16 needs a GPU; on {device} use fp32 or bf16")
    return resolve_precision(precision, device)


class SpeedBench:
    """What the setups of a comparison share: config, device, tokenizer, reviews, the base model, epoch batches."""

    def __init__(
        self,
        config: RunConfig,
        device: str | None = None,
        steps: int = 4,
        n_reviews: int | None = None,
        clock: str = "wall",
    ):
        import torch

        if steps < 1:
            raise ConfigError(f"steps must be at least 1, got {steps}")
        self.config, self.steps = config, steps
        self.device = device or accelerator()
        if clock not in CLOCKS or (clock == "cpu" and (self.device != "cpu" or torch.get_num_threads() != 1)):
            raise ConfigError(
                f"clock must be wall, or cpu for a one-thread CPU run (--threads 1), got {clock!r} "
                f"on {self.device} with {torch.get_num_threads()} threads"
            )
        self.clock = clock
        self.tokenizer = load_tokenizer(config.model)
        self.texts, self.labels = read_reviews(config.data, n_reviews or config.n_train, config.data_seed)
        self.num_labels = max(max(self.labels) + 1, 2)
        self.base = load_speed_model(config.model, self.num_labels)
        self.counts: dict[str, Any] = {}  # configuration -> counts_by_width(...), for theory_table
        self._features: dict[str, list[dict]] = {}
        self._batches: dict[tuple, EpochBatches] = {}

    def features(self, padding: str) -> list[dict]:
        if padding not in self._features:
            self._features[padding] = encode_reviews(
                self.tokenizer, self.texts, self.labels, self.config.max_length, padding
            )
        return self._features[padding]

    def batches(self, recipe: Recipe, batch_size: int) -> EpochBatches:
        key = (recipe.padding, recipe.sampler, recipe.pad_to_multiple_of, batch_size)
        if key not in self._batches:
            self._batches[key] = epoch_batches(
                self.features(recipe.padding), recipe, batch_size, self.steps, self.config.seed
            )
        return self._batches[key]

    def token_stats(self) -> dict[str, float]:
        lengths = np.array([len(ids) for ids in self.tokenizer(self.texts, truncation=False)["input_ids"]])
        return {"reviews": len(self.texts), **padding_waste(lengths, self.config.max_length)}
