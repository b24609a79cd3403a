"""The model cards (README.md) written beside an exported adapter (LoRA or another PEFT method) and the merged model:
what each folder holds, how it was trained and verified, and the plain transformers/peft code that loads it. Cards
are meant for publishing: they name the base model and the data by Hub id or by name, never by a path of this
machine."""

from __future__ import annotations

from typing import Any

from .config import ADAPTER, entry
from .data import hub_data_id, published_data_name
from .layout import TrainedRun
from .models import hub_id_of, published_model_name
from .result import Result

ADAPTER_FOLDER, MERGED_FOLDER = "lora-adapter", "lora-merged"


def adapter_folder(configuration: str = ADAPTER) -> str:
    """The export's adapter folder of `configuration` (`lora-adapter`, `dora-adapter`, ...)."""
    return ADAPTER_FOLDER if configuration == ADAPTER else f"{configuration}-adapter"


def merged_folder(configuration: str = ADAPTER) -> str:
    """The export's merged-model folder of `configuration` (`lora-merged`, `dora-merged`, ...)."""
    return MERGED_FOLDER if configuration == ADAPTER else f"{configuration}-merged"


def method_name(configuration: str) -> str:
    """How a card names the method of a PEFT configuration: LoRA, `LoRA r=4` for lora-r4, DoRA, ... (its registry
    label)."""
    known = entry(configuration)
    return known.label if known else configuration


def method_summary(settings, configuration: str) -> str:
    """One sentence on what the adapter holds, read from its PEFT config (`settings`): the method and its sizes, in
    the words of its registry entry."""
    targets = getattr(settings, "target_modules", None)
    on = f" on `{', '.join(sorted(targets))}`" if targets and not isinstance(targets, str) else ""
    return entry(configuration).describe(settings, on)


def label_lines(id2label: dict[int, str]) -> str:
    return "\n".join(f"| {i} | {label} |" for i, label in sorted(id2label.items()))


def made_with(result: Result) -> str:
    versions, git = result.versions, result.git
    sha = (git.get("sha") or "unknown")[:12] + (" (uncommitted changes)" if git.get("dirty") else "")
    return (
        f"bertpeft {versions.get('bertpeft')} (git {sha}), transformers {versions.get('transformers')}, "
        f"peft {versions.get('peft')}, torch {versions.get('torch')}"
    )


def base_to_load(model: str) -> str:
    """What the loading code in a card passes to `from_pretrained` for the base: its Hub id, else a placeholder
    path named after it (a local folder, or the tiny random BERT, is on no Hub)."""
    return hub_id_of(model) or f"path/to/{published_model_name(model)}"


def card_metadata(trained: TrainedRun, library: str, tags: list[str]) -> str:
    """The card's metadata block (YAML between `---` lines), written by huggingface_hub's `ModelCardData` so that
    the Hub reads it: the library that loads the folder, the base model and the dataset by Hub id (only when they
    are on the Hub), the pipeline, and the run's test accuracy and F1 as evaluation results."""
    from huggingface_hub import EvalResult, ModelCardData

    c, r = trained.config, trained.result
    data = published_data_name(c.data)
    hub_data = hub_data_id(c.data)
    results = [
        EvalResult(
            task_type="text-classification",
            dataset_type=data,
            dataset_name=data,
            dataset_split="test",
            metric_type=metric,
            metric_value=float(getattr(r, metric)),
        )
        for metric in ("accuracy", "f1")
    ]
    card = ModelCardData(
        library_name=library,
        base_model=hub_id_of(c.model),  # the Hub links a base by its id only
        pipeline_tag="text-classification",
        tags=tags,
        datasets=[hub_data] if hub_data else None,
        metrics=["accuracy", "f1"],
        model_name=f"{published_model_name(c.model)} {method_name(c.configuration)} ({result_label(trained)})",
        eval_results=results,
    )
    return f"---\n{card.to_yaml()}\n---"


def result_label(trained: TrainedRun) -> str:
    return f"{trained.num_labels}-class review sentiment, seed {trained.config.seed}"


def adapter_card(trained: TrainedRun, base: str, method: str, merge_refused: str | None = None) -> str:
    """README.md of the adapter folder: what it is and the plain peft code that loads it. `base`: the name
    `adapter_config.json` gives the base model; `method`: `method_summary`; `merge_refused`: why the method cannot
    be merged into the base weights, when it cannot."""
    c, labels = trained.config, trained.id2label
    model, data = published_model_name(c.model), published_data_name(c.data)
    folder = adapter_folder(c.configuration)
    merge = (
        f"\nThis adapter is not merged into a plain model: {merge_refused}. Load it on the base model with peft.\n"
        if merge_refused
        else ""
    )
    metadata = card_metadata(trained, "peft", [c.configuration.split("-")[0], "bertpeft"])
    return f"""{metadata}
# {method_name(c.configuration)} adapter: `{model}` for {trained.num_labels}-class review sentiment

{method}. Trained with its classifier head (saved in `adapter_model.safetensors` with the adapter's weights) on
{c.n_train:,} reviews of `{data}` (seed {c.seed}). Test accuracy {trained.result.accuracy:.4f} on {c.n_test:,}
reviews. Made with {made_with(trained.result)}.
{merge}
| id | label |
|---|---|
{label_lines(labels)}

```python
from peft import PeftModel
from transformers import AutoModelForSequenceClassification, AutoTokenizer

id2label = {labels!r}
base = AutoModelForSequenceClassification.from_pretrained(
    "{base_to_load(c.model)}", num_labels={trained.num_labels}, id2label=id2label, label2id={{v: k for k, v in id2label.items()}},
    ignore_mismatched_sizes=True)  # the adapter brings its own trained head
model = PeftModel.from_pretrained(base, "path/to/{folder}")
tokenizer = AutoTokenizer.from_pretrained("path/to/{folder}")
```
"""


def model_card(trained: TrainedRun, verification: dict[str, Any]) -> str:
    """README.md of the merged folder: metrics, how it was made and verified, how to use it."""
    c, r = trained.config, trained.result
    model, data = published_model_name(c.model), published_data_name(c.data)
    average = "positive class" if trained.num_labels == 2 else "macro average"
    diffs = verification["max_abs_diff"]
    name = method_name(c.configuration)
    folder = merged_folder(c.configuration)
    metadata = card_metadata(trained, "transformers", [c.configuration.split("-")[0], "merged", "bertpeft"])
    return f"""{metadata}
# `{model}` + {name}, merged: {trained.num_labels}-class review sentiment

A plain transformers model: a {name} adapter trained by bertpeft and merged into the base weights. It loads with
`transformers.pipeline` or `AutoModelForSequenceClassification`; peft is not needed.

## Metrics
Test set: {c.n_test:,} reviews of `{data}` (a seeded random sample, seed {c.data_seed}); precision, recall and F1
are the {average}.

| accuracy | precision | recall | F1 |
|---|---|---|---|
| {r.accuracy:.4f} | {r.precision:.4f} | {r.recall:.4f} | {r.f1:.4f} |

## Labels
| id | label |
|---|---|
{label_lines(trained.id2label)}

## How it was made
- Base model `{verification["base_model"]}`, {c.n_train:,} training reviews, truncated at
  {c.max_length} tokens, {c.epochs:g} epoch(s) at learning rate {r.learning_rate}, seed {c.seed}.
- {verification["method"]}, plus the classifier head: {r.trainable_params:,} trainable parameters of
  {r.total_params:,}.
- The adapter was saved alone ({verification["adapter_mb"]:.2f} MB), reloaded onto a freshly loaded base model
  with `PeftModel.from_pretrained`, merged with `merge_and_unload()` and saved here
  ({verification["merged_mb"]:.2f} MB).
- Verified on {verification["reviews"]} test reviews: merged vs adapter-on-base logits differ by at most
  {diffs["merged_vs_adapter"]:.2e}, adapter-on-base vs the trained model by {diffs["adapter_vs_trained"]:.2e}
  (tolerance {verification["tolerance"]:g}).
- Made with {made_with(r)}.

## Use
```python
from transformers import pipeline

classifier = pipeline("text-classification", model="path/to/{folder}")
classifier("The pasta was cold and the waiter ignored us.", truncation=True)
```
"""
