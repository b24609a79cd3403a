"""Every configuration bertpeft trains, one entry each: what it is (its family), how a card and a table name it,
the rate it trains at by default, and, for a PEFT method, the peft config that builds it and whether its update
folds into the base weights. The command line's choices, the method lists, the rates, the builders of peft configs,
the cards' words and the export's merge decisions all read this registry; adding a method is one entry here (and
one row in tests/test_methods.py).

Two families are parametric: `head+N` (the head and the top N encoder layers) and `lora-rN` (LoRA at rank N);
`entry(name)` builds their entries on request."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

# Families: what a configuration trains.
#   none: nothing (the pretrained encoder under a random head); head: the classification head; layers: the head and
#   the top N encoder layers; bias: the head and every bias term (BitFit); peft: the head and a PEFT method's
#   weights; full: every weight; probe: a logistic regression on the frozen encoder's mean-pooled embeddings.
FAMILIES = ("none", "head", "layers", "bias", "peft", "full", "probe")


class PeftInputs(NamedTuple):
    """What a PEFT method's builder may read, resolved by bertpeft.models for the model at hand: the model itself
    (its config and modules), the modules LoRA wraps (`targets`), the rank, alpha and dropout the settings ask for,
    the training's optimizer steps, the names of its LayerNorm modules in the encoder, its IA3 targets when PEFT has none for
    the model type ((targets, feed-forward ones) or None) and the training seed."""

    model: Any
    targets: list[str]
    rank: int
    alpha: float
    dropout: float
    steps: int
    layer_norms: list[str]
    ia3_targets: tuple[list[str], list[str]] | None
    seed: int


@dataclass(frozen=True)
class Configuration:
    """One configuration. For a PEFT method, `peft` names the peft config class and `build` gives its arguments
    (the task type and the head's `modules_to_save` are added by bertpeft.models); `describe` says in one sentence
    what an adapter holds, from its saved peft config and the `on` text naming its targets."""

    name: str
    family: str
    label: str
    learning_rate: float | None = None
    peft: str | None = None  # the peft config class, e.g. "LoraConfig"
    peft_type: str | None = None  # its member of peft.PeftType (the test that peft still has it reads this)
    build: Callable[[PeftInputs], dict[str, Any]] | None = None
    describe: Callable[[Any, str], str] | None = None
    unmergeable: str | None = None  # why the update cannot be folded into the base weights; None: it merges
    converts_base: bool = False  # its initialisation changes the base weights: exported as a plain LoRA adapter
    virtual_tokens: bool = False  # adds positions beside each review (prefix and prompt tuning)
    past_key_values: bool = False  # fed to the attention as past keys and values (prefix tuning)
    own_targets: bool = False  # chooses what it wraps itself, not LoRA's targets (IA3, LayerNorm and prompt tuning)
    reads_weights: bool = False  # its construction reads the weights: counted on random ones, not a bare skeleton
    low_rank: bool = False  # a low-rank update of LoRA's targets, sized by lora_r and lora_alpha
    compared: bool = True  # in the methods comparison (notebook 06)
    rank: int | None = None  # lora-rN: N
    layers: int | None = None  # head+N: N, the encoder layers nearest the head that train beside it
    # How alpha follows the rank: "scaled" keeps alpha / r at the settings' (lora-rN), "fixed" keeps the settings'
    # alpha at every rank (rslora-rN: rsLoRA's own answer, scaling by alpha / sqrt(r)); a number is alpha itself
    # (lora-rN-aM). Only a rank sweep's entries set it.
    alpha: str | float = "scaled"
    base: str | None = None  # the entry a rank sweep's entry is built from (lora, rslora)

    @property
    def uses_peft(self) -> bool:
        return self.family == "peft"

    @property
    def merges(self) -> bool:
        return self.uses_peft and self.unmergeable is None


VIRTUAL_TOKENS = 20  # prefix and prompt tuning
VERA_RANK = 256  # VeRA's shared frozen random matrices are this wide; two scaling vectors per matrix train
FOURIER_FREQUENCIES = 1000  # FourierFT's and WaveFT's trained coefficients per wrapped matrix


def _widths(inputs: PeftInputs) -> list[int]:
    """The input and output widths of every wrapped matrix."""
    return sorted(
        {
            size
            for name, module in inputs.model.named_modules()
            if name.split(".")[-1] in inputs.targets and hasattr(module, "weight")
            for size in module.weight.shape
        }
    )


def _fitting(preferred: int, inputs: PeftInputs) -> int:
    """The largest power of two up to `preferred` that divides every wrapped matrix's widths (VB-LoRA's vector
    length, MiSS's shard size: both split each matrix into equal pieces)."""
    common = math.gcd(*_widths(inputs))
    size = 1
    while size * 2 <= min(preferred, common) and common % (size * 2) == 0:
        size *= 2
    return size


def _smallest_matrix(inputs: PeftInputs) -> int:
    return min(m.weight.numel() for n, m in inputs.model.named_modules() if n.split(".")[-1] in inputs.targets)


def _lora(inputs: PeftInputs, **kw) -> dict[str, Any]:
    return {
        "r": inputs.rank,
        "lora_alpha": inputs.alpha,
        "lora_dropout": inputs.dropout,
        "target_modules": inputs.targets,
        "bias": "none",
        **kw,
    }


def _adalora(inputs: PeftInputs) -> dict[str, Any]:  # starts at 1.5x the rank, prunes to it by importance
    steps = inputs.steps
    return {
        "init_r": max(inputs.rank + 1, round(1.5 * inputs.rank)),
        "target_r": inputs.rank,
        "lora_alpha": inputs.alpha,
        "lora_dropout": inputs.dropout,
        "target_modules": inputs.targets,
        "total_step": steps,
        "tinit": steps // 10,
        "tfinal": steps // 5,
        "deltaT": max(1, steps // 20),
    }


def _prompt_sizes(inputs: PeftInputs) -> dict[str, Any]:
    settings = inputs.model.config  # read through its own names (DistilBERT's `dim`, `n_layers`, `n_heads`)
    return {
        "num_virtual_tokens": VIRTUAL_TOKENS,
        "num_layers": settings.num_hidden_layers,
        "num_attention_heads": settings.num_attention_heads,
        "num_transformer_submodules": 1,
    }


def _ia3(inputs: PeftInputs) -> dict[str, Any]:
    if inputs.ia3_targets is None:
        return {}  # PEFT's own choice (or its own error naming what to set)
    targets, feedforward = inputs.ia3_targets
    return {"target_modules": targets, "feedforward_modules": feedforward}


def _on(settings) -> str:
    targets = getattr(settings, "target_modules", None)
    return f" on `{', '.join(sorted(targets))}`" if targets else ""


def _lora_words(label: str) -> Callable[[Any, str], str]:
    def words(s, on: str) -> str:
        text = f"{label}: r={s.r}, alpha={s.lora_alpha:g}, dropout={s.lora_dropout:g}{on}"
        if getattr(s, "use_dora", False):
            text += ", with DoRA's trained magnitude per output feature"
        if getattr(s, "use_rslora", False):
            text += ", scaled by alpha / sqrt(r) (rsLoRA)"
        return text

    return words


def _converted(label: str, start: str) -> Callable[[Any, str], str]:
    def words(s, on: str) -> str:
        return (
            f"{label}: LoRA r={s.r} started from {start} (alpha={s.lora_alpha:g}, dropout={s.lora_dropout:g}){on}, "
            f"saved as a plain LoRA of rank {2 * s.r} that applies to the unchanged base model"
        )

    return words


def _converted(label: str, start: str) -> Callable[[Any, str], str]:
    def words(s, on: str) -> str:
        return (
            f"{label}: LoRA r={s.r} started from {start} (alpha={s.lora_alpha:g}, dropout={s.lora_dropout:g}){on}, "
            f"saved as a plain LoRA of rank {2 * s.r} that applies to the unchanged base model"
        )

    return words


_NO_WEIGHT_CHANGED = "not a change of any weight, so there is nothing to fold into the base model"


def _peft(name: str, label: str, rate: float, peft: str, peft_type: str, build, describe, **kw) -> Configuration:
    return Configuration(
        name, "peft", label, learning_rate=rate, peft=peft, peft_type=peft_type, build=build, describe=describe, **kw
    )


def _sized(**sizes) -> Callable[[PeftInputs], dict[str, Any]]:
    """A builder that wraps LoRA's targets with fixed `sizes`."""
    return lambda i: {**sizes, "target_modules": i.targets}


ENTRIES = (
    Configuration("none", "none", "No training", compared=False),
    Configuration("head", "head", "Classifier head", learning_rate=2e-3),
    Configuration("bitfit", "bias", "BitFit", learning_rate=1e-3),
    _peft("lora", "LoRA", 1e-3, "LoraConfig", "LORA", _lora, _lora_words("LoRA"), low_rank=True),
    # the LoRA variants: low-rank updates of query and value, like LoRA, at its rate
    _peft(
        "dora", "DoRA", 1e-3, "LoraConfig", "LORA", lambda i: _lora(i, use_dora=True), _lora_words("DoRA"),
        low_rank=True,
    ),
    _peft(
        "rslora", "rsLoRA", 1e-3, "LoraConfig", "LORA", lambda i: _lora(i, use_rslora=True), _lora_words("rsLoRA"),
        low_rank=True,
    ),
    _peft(
        "adalora", "AdaLoRA", 1e-3, "AdaLoraConfig", "ADALORA", _adalora,
        lambda s, on: f"AdaLoRA: rank {s.init_r} at the start, pruned by importance to {s.target_r} on average, "
        f"alpha={s.lora_alpha:g}, dropout={s.lora_dropout:g}{on}",
        low_rank=True,
    ),
    _peft(
        "loha", "LoHa", 1e-3, "LoHaConfig", "LOHA", lambda i: {"r": i.rank, "alpha": i.alpha, "target_modules": i.targets},
        lambda s, on: f"LoHa: the update is the Hadamard product of two rank-{s.r} factorizations, alpha={s.alpha:g}{on}",
        low_rank=True,
    ),
    _peft(
        "lokr", "LoKr", 1e-3, "LoKrConfig", "LOKR", lambda i: {"r": i.rank, "alpha": i.alpha, "target_modules": i.targets},
        lambda s, on: f"LoKr: the update is a Kronecker product with a rank-{s.r} factor, alpha={s.alpha:g}{on}",
        low_rank=True,
    ),
    # LoRA initialised from the weights themselves (PiSSA: their top singular vectors; OLoRA: their QR
    # decomposition): the base keeps the remainder, so the export converts the adapter into a plain LoRA of twice
    # the rank that applies to the untouched base model (peft's path_initial_model_for_weight_conversion)
    _peft(
        "pissa", "PiSSA", 1e-3, "LoraConfig", "LORA", lambda i: _lora(i, init_lora_weights="pissa"),
        _converted("PiSSA", "the weights' top singular vectors"),
        converts_base=True, reads_weights=True, low_rank=True,
    ),
    _peft(
        "olora", "OLoRA", 1e-3, "LoraConfig", "LORA", lambda i: _lora(i, init_lora_weights="olora"),
        _converted("OLoRA", "the weights' QR decomposition"),
        converts_base=True, reads_weights=True, low_rank=True,
    ),
    # newer low-rank and sparse updates of LoRA's targets, sized by the same rank
    _peft(
        "delora", "DeLoRA", 1e-3, "DeloraConfig", "DELORA", lambda i: {"r": i.rank, "target_modules": i.targets},
        lambda s, on: f"DeLoRA: a rank-{s.r} update normalised and bounded by lambda={s.delora_lambda:g}{on}",
        low_rank=True,
    ),
    _peft(
        "shira", "ShiRA", 1e-3, "ShiraConfig", "SHIRA",
        lambda i: {"r": i.rank, "target_modules": i.targets, "random_seed": i.seed},
        lambda s, on: f"ShiRA: a sparse update with as many trained weights per matrix as a rank-{s.r} LoRA, at "
        f"{s.mask_type} positions{on}",
        low_rank=True, reads_weights=True,
    ),
    _peft(
        "vblora", "VB-LoRA", 1e-3, "VBLoRAConfig", "VBLORA",
        lambda i: {"r": i.rank, "vector_length": _fitting(256, i), "target_modules": i.targets},
        lambda s, on: f"VB-LoRA: rank-{s.r} factors composed from a shared bank of {s.num_vectors} trained vectors "
        f"of length {s.vector_length} (top {s.topk} per piece){on}",
        low_rank=True,
    ),
    _peft(
        "randlora", "RandLoRA", 1e-3, "RandLoraConfig", "RANDLORA", _sized(),
        lambda s, on: f"RandLoRA: frozen random bases of rank {s.r} shared by every layer, trained diagonal "
        f"scalings{on}",
    ),
    _peft(
        "miss", "MiSS", 1e-3, "MissConfig", "MISS", lambda i: {"r": _fitting(64, i), "target_modules": i.targets},
        lambda s, on: f"MiSS: one trained shard of {s.r} rows per matrix, shared across its width{on}",
    ),
    # orthogonal updates: the weights are rotated, not added to
    _peft(
        "oft", "OFT", 1e-3, "OFTConfig", "OFT",
        lambda i: {"oft_block_size": _fitting(32, i), "r": 0, "target_modules": i.targets},
        lambda s, on: f"OFT: a trained block-diagonal orthogonal rotation of each matrix, blocks of "
        f"{s.oft_block_size}{on}",
    ),
    _peft(
        "hra", "HRA", 1e-3, "HRAConfig", "HRA", _sized(r=8),
        lambda s, on: f"HRA: each matrix multiplied by a chain of {s.r} trained Householder reflections{on}",
    ),
    # methods with far fewer, scaled or spectral weights: larger rates
    _peft(
        "vera", "VeRA", 1e-2, "VeraConfig", "VERA",
        lambda i: {"r": VERA_RANK, "vera_dropout": i.dropout, "target_modules": i.targets},
        lambda s, on: f"VeRA: frozen random matrices of rank {s.r} shared by every layer, two trained scaling "
        f"vectors per wrapped matrix{on}",
    ),
    _peft(
        "fourierft", "FourierFT", 1e-2, "FourierFTConfig", "FOURIERFT",
        lambda i: {"n_frequency": min(FOURIER_FREQUENCIES, _smallest_matrix(i)), "target_modules": i.targets},
        lambda s, on: f"FourierFT: {s.n_frequency:,} trained spectral coefficients per wrapped matrix, scaling "
        f"{s.scaling:g}{on}",
    ),
    _peft(
        "waveft", "WaveFT", 1e-2, "WaveFTConfig", "WAVEFT",
        lambda i: {"n_frequency": min(FOURIER_FREQUENCIES, _smallest_matrix(i)), "target_modules": i.targets},
        lambda s, on: f"WaveFT: {s.n_frequency:,} trained wavelet coefficients per wrapped matrix "
        f"({s.wavelet_family}), scaling {s.scaling:g}{on}",
    ),
    _peft(
        "ia3", "IA3", 3e-3, "IA3Config", "IA3", _ia3,
        lambda s, on: f"IA3: trained vectors that rescale the activations of `{', '.join(sorted(s.target_modules))}`",
        own_targets=True,
    ),
    _peft(
        "ln_tuning", "LayerNorm tuning", 1e-3, "LNTuningConfig", "LN_TUNING",
        lambda i: {"target_modules": i.layer_norms},
        lambda s, on: f"LayerNorm tuning: trained copies of the scales and shifts of {len(s.target_modules)} LayerNorms",
        own_targets=True,
    ),
    _peft(
        "prefix", "Prefix tuning", 1e-2, "PrefixTuningConfig", "PREFIX_TUNING",
        lambda i: {**_prompt_sizes(i), "token_dim": i.model.config.hidden_size},  # keys and values: its width
        lambda s, on: f"Prefix tuning: {s.num_virtual_tokens} trained key and value vectors in each of the "
        f"{s.num_layers} attention layers",
        unmergeable="prefix tuning's trained vectors are extra keys and values that every attention layer reads "
        f"beside the review's tokens, {_NO_WEIGHT_CHANGED}",
        virtual_tokens=True, past_key_values=True, own_targets=True,
    ),
    _peft(
        # prompt embeddings sit beside the word embeddings: their width (ELECTRA's is narrower than its layers)
        "prompt", "Prompt tuning", 3e-2, "PromptTuningConfig", "PROMPT_TUNING",
        lambda i: {**_prompt_sizes(i), "token_dim": i.model.get_input_embeddings().embedding_dim},
        lambda s, on: f"Prompt tuning: {s.num_virtual_tokens} trained input embeddings placed before the review's "
        "tokens",
        unmergeable="prompt tuning's trained vectors are extra input embeddings placed before the review's tokens, "
        f"{_NO_WEIGHT_CHANGED}",
        virtual_tokens=True, own_targets=True,
    ),
    Configuration("full", "full", "Full fine-tuning", learning_rate=5e-5),
    Configuration("embeddings+logreg", "probe", "Embeddings + logistic regression"),
)  # fmt: skip
REGISTRY = {c.name: c for c in ENTRIES}

# Why these rates: a freshly initialised head moves from random to useful only with a large step, while a fully
# unfrozen BERT diverges above ~1e-4 (the BERT paper's grid is 2e-5..5e-5). LoRA's low-rank update starts at
# zero (B = 0) and needs a rate between the two; the other methods start from the rates their papers report for
# base-size encoders (AdamW). benchmarks/learning_rates.py checks them on the quick profile; `--tune-lr` searches
# around them on the validation reviews.
HEAD_PLUS_N = Configuration("head+N", "layers", "Head + top N layers", learning_rate=2e-4)

PROBE = "embeddings+logreg"
# The configurations with a part of their own in the tutorial: the untrained floor, the classifier head, the
# adapter notebook 03 exports (and the speed study weighs), and the reference every comparison is made against.
UNTRAINED, HEAD, ADAPTER, REFERENCE = "none", "head", "lora", "full"
# Experiment A's six configurations
CONFIGURATIONS = (UNTRAINED, HEAD, "head+1", "head+2", ADAPTER, REFERENCE)
# The families in the order results are shown (increasing complexity, as in Experiment A): see `display_order`
FAMILIES = ("none", "probe", "head", "layers", "bias", "peft", "full")
PEFT_METHODS = tuple(c.name for c in ENTRIES if c.uses_peft and c.name != ADAPTER)
LORA_VARIANTS = tuple(c.name for c in ENTRIES if c.low_rank and c.name != ADAPTER)
METHODS = ("bitfit", *PEFT_METHODS)
# What the `methods` profile (and notebook 06) compares: the baseline, every method, LoRA at ranks 1 to 64, and
# Experiment A's head and full fine-tuning as the two ends.
# The rank sweep three ways, so that rank and scale can be told apart: alpha scaled along (alpha / r fixed, so the
# update's scale stays), alpha fixed at the default 8 (the update grows with r), and rsLoRA (alpha / sqrt(r)).
METHOD_COMPARISON = (
    PROBE, HEAD, "bitfit", "lora-r1", ADAPTER, "lora-r16", "lora-r64",
    "lora-r1-a8", "lora-r16-a8", "lora-r64-a8", "rslora-r1", "rslora-r16", "rslora-r64",
    *(m for m in PEFT_METHODS if REGISTRY[m].compared), REFERENCE,
)  # fmt: skip

_PATTERN = re.compile(
    r"^(head\+(?P<layers>[1-9][0-9]*)|(?P<method>lora|rslora)-r(?P<rank>[1-9][0-9]*)(-a(?P<alpha>[1-9][0-9]*))?)$"
)


def entry(name: str) -> Configuration | None:
    """The registry's entry for configuration `name` (built for `head+N` and `lora-rN`); None for a name that is
    no configuration."""
    if name in REGISTRY:
        return REGISTRY[name]
    match = _PATTERN.match(name) if isinstance(name, str) else None
    if match is None:
        return None
    if match["layers"]:
        layers = int(match["layers"])
        return replace(HEAD_PLUS_N, name=name, label=f"Head + top {layers} layer(s)", layers=layers)
    rank, base = int(match["rank"]), REGISTRY[match["method"]]
    alpha = float(match["alpha"]) if match["alpha"] else ("fixed" if base.name == "rslora" else "scaled")
    label = f"{base.label} r={rank}" + (f", alpha {alpha:g}" if match["alpha"] else "")
    return replace(base, name=name, label=label, rank=rank, alpha=alpha, base=base.name)


def choices() -> str:
    """Every configuration name, for help and errors: the registry's entries, with `head+N` and `lora-rN` beside
    the entries they are built from."""
    names = []
    for known in ENTRIES:
        names.append(known.name)
        if known.name == HEAD:
            names.append("head+N (N >= 1)")
        if known.name == ADAPTER:
            names.append("lora-rN (rank N, alpha scaled along)")
            names.append("lora-rN-aM (rank N, alpha M)")
        if known.name == "rslora":
            names.append("rslora-rN (rank N, alpha fixed)")
    return ", ".join(names)


def trains(name: str) -> bool:
    """Whether configuration `name` trains anything (every family but `none`; a name that is no configuration
    counts as training, so it is shown rather than hidden)."""
    known = entry(name)
    return known is None or known.family != "none"


def is_lora_rank(name: str) -> bool:
    """Whether `name` is LoRA at some rank: the adapter itself or the rank sweeps built from it or from rsLoRA
    (`lora-rN`, `lora-rN-aM`, `rslora-rN`)."""
    known = entry(name)
    return known is not None and (known.name == ADAPTER or known.base is not None)


def display_order(name: str, default_rank: int) -> tuple[int, float, int]:
    """Sort key of results, tables and figures: by family (`FAMILIES`), `head+N` by N; the rank sweeps by rank
    (`lora` at `default_rank`, the setting's): LoRA with alpha scaled along (`lora-rN`), with alpha fixed
    (`lora-rN-aM`), rsLoRA (`rslora-rN`); then the other PEFT methods and BitFit's neighbours in registry order; a
    name that is no configuration last."""
    known = entry(name)
    if known is None:
        return len(FAMILIES), 0, 0
    family = FAMILIES.index(known.family)
    if known.layers:
        return family, known.layers, 0
    if is_lora_rank(name) or name == "rslora":
        sweep = 0.6 if "rslora" in (known.name, known.base) else 0.3 if isinstance(known.alpha, float) else 0
        return family, sweep, known.rank or default_rank
    return family, 1, ENTRIES.index(REGISTRY[name]) if name in REGISTRY else 0
