"""Training speed, measured: the seeds' recipe against ours, the six configurations against full fine-tuning, and
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
"""

from __future__ import annotations

import contextlib
import copy
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .config import ConfigError, RunConfig, profile_config, unfrozen_layers
from .data import DataError, resolve_data_source

SEEDS, DYNAMIC, OURS = "seeds", "dynamic", "ours"
PHASES = ("collate", "forward", "backward", "optimizer")
DEFAULT_SECTIONS = ("recipes", "configurations", "lora_dropout", "freezing", "precision")
MAX_GRAD_NORM = 1.0  # the Trainer's default clipping, part of every step it takes
# "wall": elapsed time, what a user waits for. "cpu": this process's CPU time, which other processes on a shared
# machine do not inflate; it equals wall time for a one-thread run on an idle machine (CPU only, threads=1).
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


# --------------------------------------------------------------------------------------------- recipes and setups
@dataclass(frozen=True)
class Recipe:
    """How batches are made and computed: what tokenization and the Trainer's arguments decide."""

    name: str
    padding: str  # "max_length": every review padded at tokenization (the seeds); "dynamic": per batch
    sampler: str  # "random" (the Trainer's default) or "group_by_length"
    precision: str  # "fp32", or "fp16"/"bf16" autocast
    pad_to_multiple_of: int | None = None


def make_recipe(name: str, config: RunConfig, device: str) -> Recipe:
    """`seeds`: the write-ups' recipe (padding="max_length", fp32, Trainer defaults). `dynamic`: per-batch padding
    only. `ours`: what `bertpeft.training` does on `device` (dynamic padding, length grouping, device precision)."""
    from .training import resolve_precision

    if name == SEEDS:
        return Recipe(SEEDS, "max_length", "random", "fp32")
    if name == DYNAMIC:
        return Recipe(DYNAMIC, "dynamic", "random", "fp32")
    if name == OURS:
        precision = resolve_precision(config.precision, device)
        return Recipe(
            OURS,
            config.padding,
            "group_by_length" if config.group_by_length else "random",
            precision,
            8 if precision == "fp16" else None,
        )  # as training.train_configuration pads
    raise ConfigError(f"unknown recipe {name!r}: use {SEEDS}, {DYNAMIC} or {OURS}")


@dataclass(frozen=True)
class Setup:
    """One timed variant: a configuration, trained (or run forward only) with a recipe."""

    label: str
    configuration: str = "full"
    recipe: str = OURS
    precision: str | None = None  # overrides the recipe's
    batch_size: int | None = None  # overrides config.train_batch_size
    layers: str = "top"  # which N layers head+N trains: "top" (nearest the head, ours) or "bottom"
    lora_r: int | None = None
    lora_dropout: float | None = None
    training: bool = True  # False: forward only, eval mode, no gradients; `none` never trains
    merged: bool = False  # LoRA merged into the base weights (forward only)
    frozen_in_eval: bool = False  # frozen embeddings and encoder layers without dropout (not the Trainer's way)
    dropout: bool = True  # False: every dropout rate set to 0 (a diagnostic: it changes the training maths)

    @property
    def trains(self) -> bool:
        return self.training and self.configuration != "none"


def section_setups(name: str, config: RunConfig, device: str) -> tuple[list[Setup], str]:
    """The setups a named section compares, and the label the others are relative to."""
    base = config.configuration if config.configuration != "none" else "full"
    if name == "recipes":
        return [Setup("seeds' recipe", base, recipe=SEEDS), Setup("ours", base, recipe=OURS)], "seeds' recipe"
    if name in ("configurations", "seeds_configurations"):
        recipe = SEEDS if name.startswith("seeds") else OURS
        setups = [Setup(c, c, recipe=recipe) for c in config.configurations]
        if "full" not in config.configurations:
            setups.append(Setup("full", "full", recipe=recipe))
        return setups, "full"
    if name == "precision":
        others = {"cuda": ("fp16", "bf16"), "mps": ("fp16",)}.get(device, ("bf16",))
        return [Setup(f"{base} {p}", base, precision=p) for p in ("fp32", *others)], f"{base} fp32"
    if name == "seeds_precision":  # could precision alone make LoRA slower than full fine-tuning?
        low = "bf16" if device == "cpu" else "fp16"
        return [
            Setup(f"{c} {p}", c, recipe=SEEDS, precision=p) for c in ("full", "lora") for p in ("fp32", low)
        ], "full fp32"
    if name == "lora_dropout":
        rate = config.lora_dropout or 0.05
        return [
            Setup("lora dropout 0", "lora", lora_dropout=0.0),
            Setup(f"lora dropout {rate:g}", "lora", lora_dropout=rate),
        ], "lora dropout 0"
    if name == "freezing":
        n = min(2, _layer_count(config))
        return [
            Setup(f"head+{n} (top layers)", f"head+{n}"),
            Setup(f"head+{n} (bottom layers)", f"head+{n}", layers="bottom"),
            Setup("head", "head"),
            Setup("head, frozen layers without dropout", "head", frozen_in_eval=True),
            Setup("full", "full"),
        ], "full"
    if name == "dropout":  # how much of the LoRA/full gap is dropout, which both pay in every layer
        return [
            Setup("full", "full"),
            Setup("lora", "lora"),
            Setup("full, no dropout", "full", dropout=False),
            Setup("lora, no dropout", "lora", dropout=False),
        ], "full"
    if name == "lora_rank":
        return [Setup(f"lora r={r}", "lora", lora_r=r) for r in (4, 16, 64)] + [Setup("full", "full")], "lora r=4"
    if name == "batch_size":
        return [Setup(f"{base} batch {b}", base, batch_size=b) for b in (8, 16, 32)], f"{base} batch 16"
    if name == "padding":
        return [
            Setup(f"{base} {r}", base, recipe=r, precision="fp32") for r in (SEEDS, DYNAMIC, OURS)
        ], f"{base} {SEEDS}"
    if name == "inference":
        return [
            Setup("base model", "full", training=False),
            Setup("lora unmerged", "lora", training=False),
            Setup("lora merged", "lora", training=False, merged=True),
        ], "base model"
    raise ConfigError(f"unknown section {name!r}: use {', '.join(SECTIONS)}")


SECTIONS = (
    "recipes",
    "configurations",
    "seeds_configurations",
    "precision",
    "seeds_precision",
    "lora_dropout",
    "freezing",
    "dropout",
    "lora_rank",
    "batch_size",
    "padding",
    "inference",
)


def _layer_count(config: RunConfig) -> int:
    from transformers import AutoConfig

    from .models import resolve_model_source

    return AutoConfig.from_pretrained(resolve_model_source(config.model)).num_hidden_layers


# ------------------------------------------------------------------------------------------------ reviews and batches
def read_reviews(data: str, n: int, seed: int) -> tuple[list[str], list[int]]:
    """`n` reviews drawn at random (seeded) from the training file of `data`: a CSV, Parquet or JSON Lines file, or
    a folder with one (the smoke fixture too). Label and text only; no `datasets` needed for local files."""
    import pandas as pd

    source = resolve_data_source(data)
    if source.kind == "hub":
        from .data import load_reviews

        train = load_reviews(data)["train"]
        frame = pd.DataFrame({"label": train["label"], "text": train["text"]})
    else:
        path = Path(source.files["train"])
        readers = {
            ".csv": pd.read_csv,
            ".parquet": pd.read_parquet,
            ".jsonl": lambda p: pd.read_json(p, lines=True),
            ".json": lambda p: pd.read_json(p, lines=True),
        }
        frame = readers[path.suffix.lower()](path)
        missing = {"label", "text"} - set(frame.columns)
        if missing:
            raise DataError(f"{path} has no {sorted(missing)} column(s): the columns must be label,text")
    frame = frame[frame["text"].notna() & (frame["text"].astype(str).str.strip() != "")]
    picked = np.random.default_rng(seed).permutation(len(frame))[:n]
    return frame["text"].astype(str).iloc[picked].tolist(), frame["label"].astype(int).iloc[picked].tolist()


def encode_reviews(tokenizer, texts: list[str], labels: list[int], max_length: int, padding: str) -> list[dict]:
    """Token features as `data.tokenize_reviews` makes them (the seeds pad to `max_length` here, we do not)."""
    encoded = tokenizer(
        texts, truncation=True, max_length=max_length, padding="max_length" if padding == "max_length" else False
    )
    keys = [k for k in ("input_ids", "token_type_ids", "attention_mask") if k in encoded]
    return [{**{k: encoded[k][i] for k in keys}, "label": labels[i]} for i in range(len(texts))]


def make_sampler(recipe: Recipe, features: list[dict], batch_size: int, seed: int):
    """The sampler the Trainer builds for this recipe: `RandomSampler`, or `LengthGroupedSampler` for
    `train_sampling_strategy="group_by_length"` (shuffled mega-batches of 50 batches, each sorted by length)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    if recipe.sampler == "group_by_length":
        from transformers.trainer_pt_utils import LengthGroupedSampler

        return LengthGroupedSampler(batch_size, lengths=[len(f["input_ids"]) for f in features], generator=generator)
    return torch.utils.data.RandomSampler(features, generator=generator)


@dataclass
class EpochBatches:
    """One epoch of batches as the Trainer would draw them, and the few we time."""

    recipe: Recipe
    batch_size: int
    features: list[dict]
    batches: list[list[int]]  # review indices of each batch, in the sampler's order
    widths: list[int]  # padded width of each batch after collation
    timed: list[int]  # positions in `batches` of the timed batches

    def rows(self, position: int) -> list[dict]:
        return [self.features[i] for i in self.batches[position]]

    def tokens(self, position: int) -> tuple[int, int]:
        """(real, padded) tokens of one batch."""
        batch = self.batches[position]
        return sum(len([m for m in self.features[i]["attention_mask"] if m]) for i in batch), self.widths[
            position
        ] * len(batch)

    @property
    def padded_over_real(self) -> float:
        """Tokens the model reads per real token over the whole epoch (1.0 = no padding)."""
        real, padded = zip(*(self.tokens(p) for p in range(len(self.batches))))
        return sum(padded) / max(sum(real), 1)


def epoch_batches(features: list[dict], recipe: Recipe, batch_size: int, steps: int, seed: int) -> EpochBatches:
    """The epoch's batches and `steps` timed ones: full batches at evenly spaced quantiles of the padded width, a
    stratified sample whose mean step time estimates the epoch's."""
    order = list(make_sampler(recipe, features, batch_size, seed))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    multiple = recipe.pad_to_multiple_of or 1
    widths = [-(-max(len(features[i]["input_ids"]) for i in b) // multiple) * multiple for b in batches]
    full = sorted((w, p) for p, w in enumerate(widths) if len(batches[p]) == batch_size)
    if not full:
        raise ConfigError(f"fewer than {batch_size} reviews: raise --n-train or lower --train-batch-size")
    timed = [full[min(int((j + 0.5) * len(full) / steps), len(full) - 1)][1] for j in range(steps)]
    return EpochBatches(recipe, batch_size, features, batches, widths, timed)


# ------------------------------------------------------------------------------------------------------- the model
def write_random_bert(folder: str | Path, tokenizer: str = "minilm", vocab_size: int = 28_996, **shape: Any) -> Path:
    """A weightless model folder (config.json + tokenizer, ~1 MB) that `load_speed_model` fills with random weights.

    The defaults give bert-base-cased's shape (vocab 28,996: 108,311,810 parameters with a 2-label head) with the
    WordPiece vocabulary of `tokenizer` cut to `vocab_size` entries. Step time does not depend on weight values,
    so this stands in for bert-base on a machine that cannot download it."""
    from transformers import BertConfig, BertTokenizerFast

    from .models import load_tokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = {word: i for word, i in load_tokenizer(tokenizer).get_vocab().items() if i < vocab_size}
    # transformers 5 takes the vocabulary itself (`vocab=`); a `vocab_file=` argument is silently ignored.
    BertTokenizerFast(vocab=vocab, do_lower_case=True, model_max_length=512).save_pretrained(folder)
    BertConfig(vocab_size=vocab_size, **shape).save_pretrained(folder)
    return folder


def load_speed_model(model: str, num_labels: int, seed: int = 0):
    """`models.load_base_model`, or random weights when `model` is a folder with a config but no weights."""
    from .models import load_base_model, resolve_model_source

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
    from .models import apply_configuration, classifier_module, encoder_layers

    overrides = {k: v for k, v in (("lora_r", setup.lora_r), ("lora_dropout", setup.lora_dropout)) if v is not None}
    run = config.replace(configuration=setup.configuration, **overrides)
    model = apply_configuration(copy.deepcopy(base), run)
    if setup.layers == "bottom" and unfrozen_layers(setup.configuration):
        layers = encoder_layers(model)
        model.requires_grad_(False)
        classifier_module(model).requires_grad_(True)
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


def frozen_modules_to_eval(model) -> list[str]:
    """Switch off dropout in the embeddings and encoder layers that have no trainable weight. The Trainer keeps
    them in train mode (dropout on), which on a CPU costs time and forces the slower attention path; turning it off
    changes what the head sees in training, so it is measured here, not made a default."""
    import re

    switched = []
    for name, module in model.named_modules():
        if re.search(r"(^|\.)(embeddings|encoder\.layer\.\d+)$", name) and not any(
            p.requires_grad for p in module.parameters()
        ):
            module.eval()
            switched.append(name)
    return switched


def synchronize(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()
    elif device == "mps":
        torch.mps.synchronize()


def autocast(device: str, precision: str):
    import torch

    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device, dtype={"fp16": torch.float16, "bf16": torch.bfloat16}[precision])


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
        if setup.frozen_in_eval:
            frozen_modules_to_eval(self.model)
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
    from .training import resolve_precision

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

        from .models import load_tokenizer
        from .training import accelerator

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
        from .data import padding_waste

        lengths = np.array([len(ids) for ids in self.tokenizer(self.texts, truncation=False)["input_ids"]])
        return {"reviews": len(self.texts), **padding_waste(lengths, self.config.max_length)}


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
    lora = setup.configuration == "lora"
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


def run_section(bench: SpeedBench, name: str, repeats: int = 3, progress=print) -> dict[str, Any]:
    setups, reference = section_setups(name, bench.config, bench.device)
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
    from .results import device_description, git_state, package_versions

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
    """The issue's targets (set for MiniLM at max_length 512), with the measured values."""
    sections = result["sections"]
    values = {}
    if "recipes" in sections:
        values["ours_over_seeds_samples_per_second"] = sections["recipes"]["setups"]["ours"][
            "relative_samples_per_second"
        ]
    configurations = sections.get("configurations", {}).get("setups", {})
    for name in ("lora", "head"):
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


def run_speed_benchmark(args) -> int:
    """`bertpeft bench` and benchmarks/training_speed.py: measure, print the tables, write the JSON."""
    from .cli import OVERRIDES
    from .results import atomic_write_json

    config = profile_config(args.profile, **{name: getattr(args, name, None) for name in OVERRIDES})
    sections = getattr(args, "sections", None) or DEFAULT_SECTIONS
    if isinstance(sections, str):
        sections = tuple(s.strip() for s in sections.split(",") if s.strip())
    if args.repeats < 1 or args.steps < 1:
        raise ConfigError(f"--repeats and --steps must be at least 1, got {args.repeats} and {args.steps}")
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    result = measure_training_speed(
        config, sections, args.repeats, args.steps, clock=getattr(args, "clock", None) or "wall"
    )
    path = Path(args.output) / (getattr(args, "name", None) or result_filename(config, result["device_type"]))
    atomic_write_json(path, result)
    print(format_speed_table(result))
    print(f"wrote {path}")
    return 0


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
    theory = {"none": 2 / 6, "head": 2 / 6, "lora": 4 / 6, "full": 1.0}
    features = bench.features("dynamic")
    median = int(np.median([len(f["input_ids"]) for f in features]))
    rows = []
    for name in bench.config.configurations:
        if name not in bench.counts:
            model = configure_model(bench.base, bench.config, Setup(name, name))
            bench.counts[name] = counts_by_width(model, bench.config.train_batch_size, name != "none")
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
        table[column] = table[column] / table.loc["full", column]
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
    from .models import model_skeleton

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
        saved = counted_step(meta, batch_size, width, name != "none")["saved_bytes"]
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
        with profile(activities=activities) as prof:
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
        folder = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
        found = sorted(folder.glob(f"training_speed-*-{device}.json")) if folder.is_dir() else []
        if not found:
            return None
        path = found[0]
    return json.loads(Path(path).read_text(encoding="utf-8"))


def verdict(sections: dict[str, dict[str, Any]]) -> list[str]:
    """The measured answers, one sentence each, worded from this notebook's own numbers."""
    lines = []
    conf = sections.get("configurations", {}).get("setups", {})
    if "lora" in conf and "full" in conf:
        ratio = conf["lora"]["relative_step_time"]
        flops = conf["lora"]["flops_per_step"] / conf["full"]["flops_per_step"]
        lines.append(
            f"A LoRA step took {ratio:.2f}x a full fine-tuning step (its matrix-product FLOPs are "
            f"{flops:.2f}x): here LoRA is {'cheaper' if ratio < 1 else 'not cheaper'} per step."
        )
    if "head" in conf:
        none = conf.get("none", {}).get("relative_step_time")
        lines.append(
            f"A head-only step took {conf['head']['relative_step_time']:.2f}x a full step"
            + (f"; a forward pass alone (configuration 'none', eval mode) took {none:.2f}x." if none else ".")
        )
    drop = sections.get("lora_dropout", {}).get("setups", {})
    if len(drop) == 2:
        label = [k for k in drop if k != "lora dropout 0"][0]
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
    head_eval = freezing.get("head, frozen layers without dropout")
    if head_eval and "head" in freezing:
        lines.append(
            f"Without dropout in the frozen layers a head-only step took {head_eval['relative_step_time']:.2f}x "
            f"a full step (with it, as the Trainer runs it: {freezing['head']['relative_step_time']:.2f}x)."
        )
    nodrop = sections.get("dropout", {}).get("setups", {})
    if {"lora", "lora, no dropout", "full, no dropout"} <= set(nodrop):
        a = nodrop["lora"]["relative_step_time"]
        b = nodrop["lora, no dropout"]["relative_step_time"] / nodrop["full, no dropout"]["relative_step_time"]
        flops = nodrop["lora"]["flops_per_step"] / nodrop["full"]["flops_per_step"]
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
            f"The seeds' padding to max_length made a step {1 / padding[ours[0]]['relative_step_time']:.1f}x "
            f"as long as our dynamic, length-grouped batches ({tokens:.1f}x the tokens)."
        )
    inference = sections.get("inference", {}).get("setups", {})
    if "lora unmerged" in inference:
        lines.append(
            f"Inference: unmerged LoRA took {inference['lora unmerged']['relative_step_time']:.2f}x the "
            f"base model's time, merged {inference['lora merged']['relative_step_time']:.2f}x."
        )
    return lines


def save_sections(path: str | Path, bench: SpeedBench, sections: dict[str, dict[str, Any]]) -> Path:
    """The notebook's measurements as one JSON (config, versions, device, every raw step)."""
    from .results import atomic_write_json, device_description, git_state, package_versions

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
