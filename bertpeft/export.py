"""Export a run's trained PEFT configuration (LoRA by default; any of lora-rN, dora, rslora, adalora, loha, lokr,
vera, fourierft, ia3, prefix, prompt) twice, and prove both exports compute what was trained. For `lora`:

1. `<run>/export/lora-adapter/`: the adapter alone (`adapter_config.json` naming the base model by its Hub id, or
   by the name the run gave it when it has none, never by a path on this machine; `adapter_model.safetensors` with
   the LoRA matrices *and* the trained classifier head, the tokenizer). A few MB; it needs the base model beside
   it.
2. `<run>/export/lora-merged/`: that adapter reloaded onto a freshly loaded base with `PeftModel.from_pretrained`,
   folded into the weights with `merge_and_unload()`, saved as a plain transformers model (safetensors,
   id2label/label2id, tokenizer, model card). Loads with `transformers.pipeline`; no peft needed.
3. `<run>/export/verification.json`: logits on real test reviews of the run agree within 1e-4 (trained model vs
   adapter-on-base vs merged), and the pipeline returns readable labels.

Another method `M` goes to `M-adapter/`, `M-merged/` and `verification-M.json`. Prefix and prompt tuning cannot be
merged (their trained vectors are extra inputs of the attention, not a change of any weight): their adapter is
saved, reloaded and checked, and the verification and the adapter's card say why there is no merged model.

The export folder is meant for publishing: its files name the base model and the data by Hub id or by name, and
its folders relative to it; nothing in it holds a path of this machine. The checks load the base model from where
this machine has it (`base_model_source`).
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .benchmark import benchmark_row
from .cards import adapter_card, adapter_folder, merged_folder, method_summary, model_card
from .config import (
    ADAPTER,
    PEFT_METHODS,
    REFERENCE,
    ConfigError,
    RunConfig,
    check_configuration,
    entry,
    first_line,
    uses_peft,
)
from .configurations import ENTRIES
from .data import load_prepared
from .layout import (
    RunDir,
    TrainedRun,
    atomic_write_json,
    atomic_write_text,
    ordinary_permissions,
    read_results,
    result_name,
    trained_runs,
)
from .manifest import not_ours, record_folder, unowned
from .models import (
    apply_configuration,
    given_model_name,
    load_base_model,
    load_tokenizer,
    load_trained_model,
    peft_without_upstream_warning,
    published_model_name,
    resolve_model_source,
)
from .result import Result

VERIFICATION = "verification.json"
TOLERANCE = 1e-4  # fp32 merge rounding is ~1e-6; a wrong or missing head or adapter is off by far more


# Why a method cannot be folded into the base model's weights (PEFT has no merge for it), from the registry
UNMERGEABLE = {c.name: c.unmergeable for c in ENTRIES if c.uses_peft and c.unmergeable}


class ExportError(ConfigError):
    """A run that cannot be exported, or an export that failed its check; the message says what to do."""


def export_dir(run_dir: str | Path) -> Path:
    return RunDir(run_dir).export


def verification_name(configuration: str = ADAPTER) -> str:
    return VERIFICATION if configuration == ADAPTER else f"verification-{configuration}.json"


def check_exportable(configuration: str) -> str:
    """`configuration` if it makes an adapter (a PEFT configuration); one line saying why not otherwise."""
    check_configuration(configuration)
    if uses_peft(configuration):
        return configuration
    why = {
        "none": "trains nothing",
        "bias": "trains the model's own bias terms",
        "probe": "fits a logistic regression on the frozen encoder's embeddings",
    }.get(entry(configuration).family, "trains the model's own weights")
    raise ExportError(
        f"{configuration} {why}, so it has no adapter to export: bertpeft export exports a PEFT configuration "
        f"(--config lora, lora-rN, {', '.join(PEFT_METHODS)})"
    )


def find_trained(run: str | Path | RunConfig, configuration: str = ADAPTER, seed: int | None = None) -> TrainedRun:
    """The run's trained `configuration` (the given seed, else the first one); a clear refusal otherwise."""
    runs = [r for r in trained_runs(run, configuration) if seed is None or r.result.seed == seed]
    if runs:
        return runs[0]
    run_dir = RunDir(run).root
    wanted = f"results/{result_name(configuration, seed) if seed is not None else f'{configuration}-seed*'}.json"
    seed_flag = f" --seed {seed}" if seed is not None else ""
    raise ExportError(
        f"{run_dir} has no trained {configuration} configuration (no {wanted}), so there is no adapter to "
        f"export. Train it first: run notebook 02 with output = {str(run_dir)!r}, or bertpeft train --profile "
        f"{_profile_of(run)} --config {configuration}{seed_flag} --output {run_dir}"
    )


def find_lora_run(run: str | Path | RunConfig, seed: int | None = None) -> TrainedRun:
    """The run's trained `lora` configuration (the given seed, else the first one); a clear refusal otherwise."""
    return find_trained(run, ADAPTER, seed)


def _profile_of(run: str | Path | RunConfig) -> str:
    """The run's profile, for the command a refusal suggests: the config given, the run's settings, else a
    placeholder."""
    if isinstance(run, RunConfig):
        return run.profile
    settings = RunDir(run).run_config
    if settings.exists():
        return json.loads(settings.read_text(encoding="utf-8")).get("profile", "PROFILE")
    return next((r.profile for r in read_results(Path(run))), "PROFILE")


def base_model_source(model: str) -> str:
    """Where this machine loads the base model from: the Hub id, or the absolute path of a folder that exists
    (`tiny-random-bert` and `minilm` resolve to their real folders). Files meant for publishing name it by
    `published_model_name` instead."""
    source = resolve_model_source(model)
    return str(Path(source).resolve()) if Path(source).exists() else source


def held_out_reviews(trained: TrainedRun, n: int | None = None):
    """The run's tokenized test split (the first `n` rows when given) and its tokenizer."""
    tokenizer = load_tokenizer(trained.config.model)
    data, _ = load_prepared(trained.config, tokenizer)
    test = data["test"]
    return (test.select(range(min(n, len(test)))) if n else test), tokenizer


def review_logits(model, tokenizer, texts, max_length: int, batch_size: int = 16) -> np.ndarray:
    """Logits of `model` on raw review texts, tokenized the way training did (truncated at `max_length`)."""
    import torch

    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                list(texts[start : start + batch_size]),
                truncation=True,
                max_length=max_length,
                padding=True,
                return_tensors="pt",
            ).to(model.device)
            out.append(model(**batch).logits.float().cpu().numpy())
    return np.concatenate(out)


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


def save_adapter(model, tokenizer, trained: TrainedRun, folder: Path) -> Path:
    """The adapter alone (the method's weights + trained head, safetensors), its config naming the base by Hub id or
    name (`published_model_name`), the tokenizer, and its card."""
    settings = model.peft_config["default"]
    settings.base_model_name_or_path = published_model_name(trained.config.model)
    # "auto" would look the base up by that name to see whether the vocabulary grew; bertpeft never resizes it
    if entry(trained.config.configuration).converts_base:
        save_as_plain_lora(model, trained, folder)
    else:
        model.save_pretrained(folder, save_embedding_layers=False)
    tokenizer.save_pretrained(folder)
    ordinary_permissions(*folder.glob("*.safetensors"))
    configuration = trained.config.configuration
    card = adapter_card(
        trained,
        settings.base_model_name_or_path,
        method_summary(settings, configuration),
        UNMERGEABLE.get(configuration),
    )
    atomic_write_text(folder / "README.md", card)
    return folder


def save_as_plain_lora(model, trained: TrainedRun, folder: Path) -> None:
    """Save an adapter whose initialisation changed the base weights (PiSSA, OLoRA: the base keeps W - B0 A0) as
    peft documents it: the difference between the trained and the initial adapter, a plain LoRA of twice the rank
    that applies to the unchanged base model. The initial adapter is rebuilt on a fresh base (the decomposition is
    deterministic) and saved with `init_lora_weights=True`, so that loading it beside the trained one does not
    decompose the weights again."""
    from peft import get_peft_model_state_dict
    from safetensors.torch import load_file, save_file

    with tempfile.TemporaryDirectory() as scratch, warnings.catch_warnings():
        # peft warns against a second adapter beside PiSSA's (the conversion is what it recommends instead), and,
        # reading the initial adapter, that it cannot look the base up by name to see whether its vocabulary grew
        warnings.filterwarnings("ignore", message=".*changes the base weights of the model", category=UserWarning)
        warnings.filterwarnings("ignore", message="Could not find a config file in", category=UserWarning)
        initial = Path(scratch) / "initial"
        c = trained.config
        start = apply_configuration(load_base_model(c.model, trained.num_labels, trained.id2label), c)
        start.peft_config["default"].init_lora_weights = True
        start.save_pretrained(initial, save_embedding_layers=False)
        del start
        # the conversion reads the base's config by the name the adapter gives it: this machine's copy, not the Hub
        settings = model.peft_config["default"]
        published, settings.base_model_name_or_path = settings.base_model_name_or_path, base_model_source(c.model)
        try:
            model.save_pretrained(
                folder, save_embedding_layers=False, path_initial_model_for_weight_conversion=str(initial)
            )
        finally:
            settings.base_model_name_or_path = published
    written = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    atomic_write_json(folder / "adapter_config.json", written | {"base_model_name_or_path": published})
    # the conversion keeps the LoRA factors alone: the trained head (peft's modules_to_save) is added back
    weights = folder / "adapter_model.safetensors"
    state = load_file(str(weights))
    state |= {
        k: v for k, v in get_peft_model_state_dict(model, save_embedding_layers=False).items() if "lora_" not in k
    }
    save_file(state, str(weights), metadata={"format": "pt"})


def load_adapter_on_base(adapter_dir: str | Path, num_labels: int, id2label: dict[int, str], base: str | None = None):
    """A freshly loaded base model with the saved adapter on top. `base`: where to load the base model from
    (default: what `adapter_config.json` names; an export names it by Hub id, so a run passes where this machine
    has it, `base_model_source`)."""
    from peft import PeftConfig, PeftModel

    base = base or PeftConfig.from_pretrained(str(adapter_dir)).base_model_name_or_path
    with peft_without_upstream_warning():
        return PeftModel.from_pretrained(load_base_model(base, num_labels, id2label), str(adapter_dir)).eval()


def save_merged(peft_model, tokenizer, folder: Path) -> Path:
    """Fold the adapter into the base weights and save a plain transformers model (config with the labels)."""
    merged = peft_model.merge_and_unload()
    unwrap_saved_modules(merged)
    merged.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    ordinary_permissions(*folder.glob("*.safetensors"))
    return folder


def unwrap_saved_modules(model) -> None:
    """Put each trained copy of a module peft kept beside the adapter (the head, `modules_to_save`) in the place of
    its wrapper. `merge_and_unload` does so for every method but LayerNorm tuning, whose unload leaves the wrapper
    (a merged folder would then hold no classifier that transformers can read)."""
    from peft.utils import ModulesToSaveWrapper

    for name, module in list(model.named_modules()):
        if isinstance(module, ModulesToSaveWrapper):
            parent, _, child = name.rpartition(".")
            setattr(
                model.get_submodule(parent) if parent else model, child, module.modules_to_save[module.active_adapter]
            )


def load_merged(folder: str | Path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    return AutoModelForSequenceClassification.from_pretrained(str(folder)).eval(), AutoTokenizer.from_pretrained(
        str(folder)
    )


def pipeline_check(merged_dir: Path, texts, max_length: int, expected: list[str]) -> dict[str, Any]:
    """`transformers.pipeline` on the merged folder: readable labels (the data's names, not LABEL_k), the same
    predictions as the merged model's logits."""
    from transformers import pipeline

    classify = pipeline("text-classification", model=str(merged_dir), device="cpu")
    outputs = classify(list(texts), truncation=True, max_length=max_length)
    labels = [o["label"] for o in outputs]
    return {
        "labels": labels,
        "scores": [round(float(o["score"]), 4) for o in outputs],
        "readable": all(not label.startswith("LABEL_") for label in labels),
        "agrees": labels == expected,
    }


def weights_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in Path(folder).glob("*.safetensors")) / 2**20


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file()) / 2**20


def export_adapter(
    run: str | Path | RunConfig, configuration: str = ADAPTER, seed: int | None = None, n_reviews: int = 32
) -> dict[str, Any]:
    """Export the run's trained PEFT `configuration` as an adapter and, where the method can merge, as a merged
    model; verify both on `n_reviews` real test reviews, write `<run>/export/verification[-M].json` and return it.

    Raises `ExportError` for a configuration that makes no adapter, when the run has not trained it, or when a check
    fails (the JSON is written first, so the numbers are there to read).
    """
    check_exportable(configuration)
    trained = find_trained(run, configuration, seed)
    out = export_dir(trained.run_dir)
    if unowned(trained.run_dir, out):
        raise not_ours(out, trained.run_dir)
    record_folder(trained.run_dir, out)  # the export folder is bertpeft's whole
    out.mkdir(parents=True, exist_ok=True)
    (out / verification_name(configuration)).unlink(missing_ok=True)
    test, tokenizer = held_out_reviews(trained, n_reviews)
    texts, max_length = list(test["text"]), trained.config.max_length
    refused = UNMERGEABLE.get(configuration)
    adapter_dir, merged_dir = _fresh(out / adapter_folder(configuration)), out / merged_folder(configuration)
    shutil.rmtree(merged_dir, ignore_errors=True)  # an earlier export's merged model is not this one's
    model = load_run_model(trained)
    method = method_summary(model.peft_config["default"], configuration)
    logits = {"trained": review_logits(model, tokenizer, texts, max_length)}
    save_adapter(model, tokenizer, trained, adapter_dir)
    del model
    logits["adapter"], merged_tokenizer = _reload_and_merge(
        trained, texts, adapter_dir, None if refused else merged_dir
    )
    if not refused:
        logits["merged"] = review_logits(load_merged(merged_dir)[0], merged_tokenizer, texts, max_length)
    verification = _verification(trained, logits, adapter_dir, None if refused else merged_dir)
    verification["method"] = method
    if refused:
        verification["merge_refused"] = refused
    else:
        expected = [trained.id2label[i] for i in logits["merged"][:5].argmax(-1)]
        verification["pipeline"] = pipeline_check(merged_dir, texts[:5], max_length, expected)
        verification["passed"] = verification["passed"] and verification["pipeline"]["readable"]
        atomic_write_text(merged_dir / "README.md", model_card(trained, verification))
    atomic_write_json(out / verification_name(configuration), verification)
    if not verification["passed"]:
        raise ExportError(
            f"the {configuration} export of {trained.run_dir} failed its check: see "
            f"{out / verification_name(configuration)}"
        )
    return _with_folders(verification, out)


def export_lora(run: str | Path | RunConfig, seed: int | None = None, n_reviews: int = 32) -> dict[str, Any]:
    """`export_adapter` of the run's trained LoRA configuration: `<run>/export/lora-adapter`, `lora-merged` and
    `verification.json`."""
    return export_adapter(run, ADAPTER, seed, n_reviews)


def _with_folders(verification: dict[str, Any], out: Path) -> dict[str, Any]:
    """The verification with its folders (stored relative to the export folder) as paths on this machine."""
    folders = ("adapter_dir", "merged_dir")
    return {**verification, **{k: str(out / verification[k]) for k in folders if verification.get(k)}}


def _fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def load_run_model(trained: TrainedRun):
    """The trained configuration rebuilt from the run's saved weights (a PEFT model for lora)."""
    return load_trained_model(trained.config, trained.weights_dir, trained.num_labels, trained.id2label)


def _reload_and_merge(trained: TrainedRun, texts, adapter_dir: Path, merged_dir: Path | None):
    """Reload the saved adapter onto a fresh base (its logits), merge that and save it (unless `merged_dir` is
    None); returns the logits and the tokenizer as saved with the merged model (else the adapter's)."""
    from transformers import AutoTokenizer

    base = base_model_source(trained.config.model)
    with_adapter = load_adapter_on_base(adapter_dir, trained.num_labels, trained.id2label, base)
    adapter_tokenizer = AutoTokenizer.from_pretrained(str(adapter_dir))
    logits = review_logits(with_adapter, adapter_tokenizer, texts, trained.config.max_length)
    if merged_dir is None:
        return logits, adapter_tokenizer
    save_merged(with_adapter, adapter_tokenizer, _fresh(merged_dir))
    return logits, AutoTokenizer.from_pretrained(str(merged_dir))


def _verification(trained: TrainedRun, logits: dict[str, np.ndarray], adapter_dir: Path, merged_dir: Path | None):
    diffs = {"adapter_vs_trained": max_abs_diff(logits["adapter"], logits["trained"])}
    if "merged" in logits:
        diffs["merged_vs_adapter"] = max_abs_diff(logits["merged"], logits["adapter"])
    # the predictions of the last model made against the one it was made from
    compared, last = ("adapter", "merged") if "merged" in logits else ("trained", "adapter")
    return {
        "run": trained.run_dir.resolve().name,
        "configuration": trained.result.name,
        "model": given_model_name(trained.config.model),
        "base_model": published_model_name(trained.config.model),
        "reviews": len(logits["adapter"]),
        "max_length": trained.config.max_length,
        "tolerance": TOLERANCE,
        "max_abs_diff": diffs,
        "passed": all(d <= TOLERANCE for d in diffs.values()),
        "same_predictions": bool((logits[last].argmax(-1) == logits[compared].argmax(-1)).all()),
        "adapter_dir": adapter_dir.name,  # relative to the export folder
        "merged_dir": merged_dir.name if merged_dir else None,
        "adapter_mb": round(weights_mb(adapter_dir), 4),
        "merged_mb": round(weights_mb(merged_dir), 4) if merged_dir else None,
        "adapter_folder_mb": round(folder_mb(adapter_dir), 4),
        "merged_folder_mb": round(folder_mb(merged_dir), 4) if merged_dir else None,
        "id2label": {str(k): v for k, v in trained.id2label.items()},
    }


def read_verification(run: str | Path | RunConfig, configuration: str = ADAPTER) -> dict[str, Any]:
    path = export_dir(RunDir(run).root) / verification_name(configuration)
    if not path.exists():
        flag = "" if configuration == ADAPTER else f" --config {configuration}"
        raise ExportError(f"{path} not found: export the run first (bertpeft export{flag} --output {RunDir(run).root})")
    return _with_folders(json.loads(path.read_text(encoding="utf-8")), path.parent)


def base_weights_mb(model: str) -> float | None:
    """MB of the base model's weights as stored: its folder, or the Hub cache (None when not cached)."""
    source = Path(base_model_source(model))
    if not source.exists():
        try:
            from huggingface_hub import snapshot_download

            source = Path(snapshot_download(str(source), local_files_only=True))
        except Exception:  # noqa: BLE001 - not cached (or no hub access): the size is unknown
            return None
    files = list(source.glob("*.safetensors")) or list(source.glob("*.bin"))
    return sum(p.stat().st_size for p in files) / 2**20 if files else None


def disk_sizes(run: str | Path | RunConfig) -> list[dict[str, Any]]:
    """Weights on disk of the two exports and of the base model, from the run's verification (folders relative to
    the run folder; the base model by the name the exports give it)."""
    v = read_verification(run)
    run_dir = RunDir(run).root
    exported = [r for r in trained_runs(run_dir, ADAPTER) if r.result.name == v["configuration"]]
    model = exported[0].config.model if exported else None
    return [
        {
            "what": "LoRA adapter (needs the base)",
            "folder": f"{export_dir(run_dir).name}/{Path(v['adapter_dir']).name}",
            "weights_mb": v["adapter_mb"],
            "folder_mb": v["adapter_folder_mb"],
        },
        {
            "what": "merged model (stand-alone)",
            "folder": f"{export_dir(run_dir).name}/{Path(v['merged_dir']).name}",
            "weights_mb": v["merged_mb"],
            "folder_mb": v["merged_folder_mb"],
        },
        {
            "what": f"base model ({v['model']})",
            "folder": v["base_model"],
            "weights_mb": base_weights_mb(model) if model else None,
            "folder_mb": None,
        },
    ]


def label_orders(run: str | Path | RunConfig, seed: int | None = None) -> list[dict[str, Any]]:
    """The base model's own labels (its config) beside the data's, id by id: a pretrained head (nlptown's 5 stars)
    is only usable zero-shot when both orders agree."""
    from transformers import AutoConfig

    trained = find_lora_run(run, seed)
    base = AutoConfig.from_pretrained(base_model_source(trained.config.model)).id2label
    return [{"id": i, "data_label": label, "base_model_label": base.get(i)} for i, label in trained.id2label.items()]


def benchmark_exports(run: str | Path | RunConfig, seed: int | None = None) -> list[dict[str, Any]]:
    """PerformanceBenchmark of base + unmerged adapter, the merged model and, when the run trained it, full
    fine-tuning, on the run's whole test split (accuracy, size, latency), beside the Trainer's accuracy."""
    trained = find_lora_run(run, seed)
    v = read_verification(trained.run_dir)
    test, tokenizer = held_out_reviews(trained)
    candidates = [
        (
            "base + LoRA adapter (unmerged)",
            trained,
            lambda: load_adapter_on_base(
                v["adapter_dir"], trained.num_labels, trained.id2label, base_model_source(trained.config.model)
            ),
        ),
        ("merged", trained, lambda: load_merged(v["merged_dir"])[0]),
    ]
    full = trained_runs(trained.run_dir, REFERENCE)
    full = [r for r in full if r.result.seed == trained.result.seed] or full  # same seed when there is one
    if full:
        candidates.append(("full fine-tuning", full[0], lambda: load_run_model(full[0])))
    return [benchmark_row(name, load(), tokenizer, test, source) for name, source, load in candidates]


def export_takeaways(verification: dict[str, Any], result: Result) -> str:
    """What notebook 03 found, in Markdown, worded from the export's verification and the LoRA result."""
    diffs = verification["max_abs_diff"]
    ratio = verification["merged_mb"] / max(verification["adapter_mb"], 1e-9)
    lines = [
        f"- The adapter alone holds {verification['adapter_mb']:.3g} MB of weights (the LoRA matrices and the trained "
        f"head: {result.trainable_params:,} numbers); the merged model, a complete copy of the network, holds "
        f"{verification['merged_mb']:.3g} MB, {ratio:,.0f}x more.",
        f"- Reloaded onto a fresh base model, the adapter reproduces the trained model's logits within "
        f"{diffs['adapter_vs_trained']:.1e}; the merged model reproduces base + adapter within "
        f"{diffs['merged_vs_adapter']:.1e} on {verification['reviews']} test reviews (tolerance "
        f"{verification['tolerance']:.0e}), with "
        + ("the same predicted label for every review." if verification["same_predictions"] else "different labels."),
    ]
    lines.append(
        "- The export passed every check: a plain `transformers.pipeline` loads the merged folder and returns the "
        "data's label names."
        if verification["passed"]
        else "- The export FAILED its check: see `export/verification.json`."
    )
    return "\n".join(lines)


REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_repo_id(repo_id: str) -> str:
    """A Hub repository id a push can create: OWNER/NAME (letters, digits, `-`, `_`, `.`)."""
    if not isinstance(repo_id, str) or not REPO_ID.match(repo_id) or ".." in repo_id:
        raise ConfigError(f"a Hub repository is OWNER/NAME, e.g. my-name/minilm-yelp-lora; got {repo_id!r}")
    return repo_id


def check_can_publish() -> None:
    """Publishing needs a token (`HF_TOKEN` or `hf auth login`) and a Hub to reach: said in one line before work."""
    from huggingface_hub import constants, get_token

    if constants.is_offline_mode():
        raise ConfigError("publishing needs the Hub, but HF_HUB_OFFLINE is set: unset it to push")
    if not get_token():
        raise ConfigError("publishing needs a Hugging Face token with write access: `hf auth login`, or set HF_TOKEN")


def publish(folder: str | Path, repo_id: str, private: bool = False, message: str | None = None) -> str:
    """Upload an exported folder (its model card with it) to the Hub repository `repo_id`, created when missing,
    with huggingface_hub (`create_repo` + `upload_folder`), the token from `HF_TOKEN` or the user's login (never
    written anywhere). Returns the commit's URL; one line (ConfigError) when the Hub refuses."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    check_repo_id(repo_id)
    check_can_publish()
    api = HfApi()
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        commit = api.upload_folder(
            folder_path=str(folder), repo_id=repo_id, commit_message=message or f"{Path(folder).name} from bertpeft"
        )
    except (HfHubHTTPError, OSError, ValueError) as err:
        raise ConfigError(f"could not publish {Path(folder).name} to {repo_id!r}: {first_line(err)}") from None
    return commit.commit_url
