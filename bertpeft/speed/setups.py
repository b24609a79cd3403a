"""The setups a comparison times: recipes (how batches are made and computed), one `Setup` per timed variant,
and the named sections that group them."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import ADAPTER, HEAD, REFERENCE, UNTRAINED, ConfigError, RunConfig
from ..device import resolve_precision
from ..models import resolve_model_source

SEEDS, DYNAMIC, OURS = "seeds", "dynamic", "ours"
DEFAULT_SECTIONS = ("recipes", "configurations", "lora_dropout", "freezing", "precision")


# --------------------------------------------------------------------------------------------- recipes and setups
@dataclass(frozen=True)
class Recipe:
    """How batches are made and computed: what tokenization and the Trainer's arguments decide."""

    name: str
    padding: str  # "max_length": every review padded at tokenization (the write-ups' recipe); "dynamic": per batch
    sampler: str  # "random" (the Trainer's default) or "group_by_length"
    precision: str  # "fp32", or "fp16"/"bf16" autocast
    pad_to_multiple_of: int | None = None


def make_recipe(name: str, config: RunConfig, device: str) -> Recipe:
    """`seeds`: the write-ups' recipe (padding="max_length", fp32, Trainer defaults). `dynamic`: per-batch padding
    only. `ours`: what `bertpeft.training` does on `device` (dynamic padding, length grouping, device precision)."""
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
    configuration: str = REFERENCE
    recipe: str = OURS
    precision: str | None = None  # overrides the recipe's
    batch_size: int | None = None  # overrides config.train_batch_size
    layers: str = "top"  # which N layers head+N trains: "top" (nearest the head, ours) or "bottom"
    lora_r: int | None = None
    lora_dropout: float | None = None
    training: bool = True  # False: forward only, eval mode, no gradients; `none` never trains
    merged: bool = False  # LoRA merged into the base weights (forward only)
    frozen_in_eval: bool | None = None  # frozen embeddings and encoder layers without dropout; None: as the run's
    # frozen_dropout setting says (by default without, as bertpeft trains; the Trainer's way keeps it)
    dropout: bool = True  # False: every dropout rate set to 0 (a diagnostic: it changes the training maths)

    @property
    def trains(self) -> bool:
        return self.training and self.configuration != UNTRAINED

    def frozen_layers_in_eval(self, config: RunConfig) -> bool:
        """Whether the wholly frozen embeddings and encoder layers run without dropout in this setup."""
        return (not config.frozen_dropout) if self.frozen_in_eval is None else self.frozen_in_eval


def section_setups(name: str, config: RunConfig, device: str) -> tuple[list[Setup], str]:
    """The setups a named section compares, and the label the others are relative to."""
    base = config.configuration if config.configuration != UNTRAINED else REFERENCE
    if name == "recipes":
        return [Setup("write-ups' recipe", base, recipe=SEEDS), Setup("ours", base, recipe=OURS)], "write-ups' recipe"
    if name in ("configurations", "seeds_configurations"):
        recipe = SEEDS if name.startswith("seeds") else OURS
        setups = [Setup(c, c, recipe=recipe) for c in config.configurations]
        if REFERENCE not in config.configurations:
            setups.append(Setup(REFERENCE, REFERENCE, recipe=recipe))
        return setups, REFERENCE
    if name == "precision":
        others = {"cuda": ("fp16", "bf16"), "mps": ("fp16",)}.get(device, ("bf16",))
        return [Setup(f"{base} {p}", base, precision=p) for p in ("fp32", *others)], f"{base} fp32"
    if name == "seeds_precision":  # could precision alone make LoRA slower than full fine-tuning?
        low = "bf16" if device == "cpu" else "fp16"
        return [
            Setup(f"{c} {p}", c, recipe=SEEDS, precision=p) for c in (REFERENCE, ADAPTER) for p in ("fp32", low)
        ], f"{REFERENCE} fp32"
    if name == "lora_dropout":
        rate = config.lora_dropout or 0.05
        return [
            Setup(f"{ADAPTER} dropout 0", ADAPTER, lora_dropout=0.0),
            Setup(f"{ADAPTER} dropout {rate:g}", ADAPTER, lora_dropout=rate),
        ], f"{ADAPTER} dropout 0"
    if name == "freezing":
        n = min(2, _layer_count(config))
        return [
            Setup(f"head+{n} (top layers)", f"head+{n}"),
            Setup(f"head+{n} (bottom layers)", f"head+{n}", layers="bottom"),
            Setup(f"{HEAD}, frozen layers with dropout", HEAD, frozen_in_eval=False),
            Setup(f"{HEAD}, frozen layers without dropout", HEAD, frozen_in_eval=True),
            Setup(REFERENCE, REFERENCE),
        ], REFERENCE
    if name == "dropout":  # how much of the LoRA/full gap is dropout, which both pay in every layer
        return [
            Setup(REFERENCE, REFERENCE),
            Setup(ADAPTER, ADAPTER),
            Setup(f"{REFERENCE}, no dropout", REFERENCE, dropout=False),
            Setup(f"{ADAPTER}, no dropout", ADAPTER, dropout=False),
        ], REFERENCE
    if name == "lora_rank":
        return [Setup(f"{ADAPTER} r={r}", ADAPTER, lora_r=r) for r in (4, 16, 64)] + [
            Setup(REFERENCE, REFERENCE)
        ], f"{ADAPTER} r=4"
    if name == "batch_size":
        return [Setup(f"{base} batch {b}", base, batch_size=b) for b in (8, 16, 32)], f"{base} batch 16"
    if name == "lora_batch":  # LoRA keeps less for backward: does a larger batch buy samples/s over full?
        b = config.train_batch_size
        return [Setup(f"{REFERENCE} batch {b}", REFERENCE)] + [
            Setup(f"{ADAPTER} batch {k * b}", ADAPTER, batch_size=k * b) for k in (1, 2, 4)
        ], f"{REFERENCE} batch {b}"
    if name == "padding":
        return [
            Setup(f"{base} {r}", base, recipe=r, precision="fp32") for r in (SEEDS, DYNAMIC, OURS)
        ], f"{base} {SEEDS}"
    if name == "inference":
        return [
            Setup("base model", REFERENCE, training=False),
            Setup(f"{ADAPTER} unmerged", ADAPTER, training=False),
            Setup(f"{ADAPTER} merged", ADAPTER, training=False, merged=True),
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
    "lora_batch",
    "padding",
    "inference",
)


def _layer_count(config: RunConfig) -> int:
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(resolve_model_source(config.model)).num_hidden_layers
