"""The model cards (README.md) written beside an exported LoRA adapter and the merged model: what each folder
holds, how it was trained and verified, and the plain transformers/peft code that loads it. Cards are meant for
publishing: they name the base model and the data by Hub id or by name, never by a path of this machine."""

from __future__ import annotations

from typing import Any

from .data import published_data_name
from .layout import TrainedRun
from .models import hub_id_of, lora_targets_of_model, published_model_name

ADAPTER, MERGED = "lora-adapter", "lora-merged"


def label_lines(id2label: dict[int, str]) -> str:
    return "\n".join(f"| {i} | {label} |" for i, label in sorted(id2label.items()))


def made_with(result: dict[str, Any]) -> str:
    versions, git = result.get("versions", {}), result.get("git", {})
    sha = (git.get("sha") or "unknown")[:12] + (" (uncommitted changes)" if git.get("dirty") else "")
    return (
        f"bertpeft {versions.get('bertpeft')} (git {sha}), transformers {versions.get('transformers')}, "
        f"peft {versions.get('peft')}, torch {versions.get('torch')}"
    )


def base_to_load(model: str) -> str:
    """What the loading code in a card passes to `from_pretrained` for the base: its Hub id, else a placeholder
    path named after it (a local folder, or the tiny random BERT, is on no Hub)."""
    return hub_id_of(model) or f"path/to/{published_model_name(model)}"


def adapter_card(trained: TrainedRun, base: str) -> str:
    """README.md of the adapter folder: what it is and the plain peft code that loads it. `base`: the name
    `adapter_config.json` gives the base model."""
    c, labels = trained.config, trained.id2label
    model, data = published_model_name(c.model), published_data_name(c.data)
    hub_base = f"base_model: {base}\n" if hub_id_of(c.model) else ""  # the Hub links a base by its id only
    return f"""---
library_name: peft
{hub_base}pipeline_tag: text-classification
tags: [lora, bertpeft]
---
# LoRA adapter: `{model}` for {trained.num_labels}-class review sentiment

LoRA r={c.lora_r}, alpha={c.lora_alpha}, dropout={c.lora_dropout} on `{", ".join(lora_targets_of_model(c))}`, trained
with its classifier head (saved in `adapter_model.safetensors` with the LoRA matrices) on {c.n_train:,} reviews of
`{data}` (seed {c.seed}). Test accuracy {trained.result["accuracy"]:.4f} on {c.n_test:,} reviews.
Made with {made_with(trained.result)}.

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
model = PeftModel.from_pretrained(base, "path/to/{ADAPTER}")
tokenizer = AutoTokenizer.from_pretrained("path/to/{ADAPTER}")
```
"""


def model_card(trained: TrainedRun, verification: dict[str, Any]) -> str:
    """README.md of the merged folder: metrics, how it was made and verified, how to use it."""
    c, r = trained.config, trained.result
    model, data = published_model_name(c.model), published_data_name(c.data)
    average = "positive class" if trained.num_labels == 2 else "macro average"
    diffs = verification["max_abs_diff"]
    return f"""---
library_name: transformers
pipeline_tag: text-classification
tags: [lora, merged, bertpeft]
---
# `{model}` + LoRA, merged: {trained.num_labels}-class review sentiment

A plain transformers model: a LoRA adapter trained by bertpeft and merged into the base weights. It loads with
`transformers.pipeline` or `AutoModelForSequenceClassification`; peft is not needed.

## Metrics
Test set: {c.n_test:,} reviews of `{data}` (a seeded random sample, seed {c.data_seed}); precision, recall and F1
are the {average}.

| accuracy | precision | recall | F1 |
|---|---|---|---|
| {r["accuracy"]:.4f} | {r["precision"]:.4f} | {r["recall"]:.4f} | {r["f1"]:.4f} |

## Labels
| id | label |
|---|---|
{label_lines(trained.id2label)}

## How it was made
- Base model `{verification["base_model"]}`, {c.n_train:,} training reviews, truncated at
  {c.max_length} tokens, {c.epochs:g} epoch(s) at learning rate {r.get("learning_rate")}, seed {c.seed}.
- LoRA r={c.lora_r}, alpha={c.lora_alpha}, dropout={c.lora_dropout} on `{", ".join(lora_targets_of_model(c))}`, plus
  the classifier head: {r["trainable_params"]:,} trainable parameters of {r["total_params"]:,}.
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

classifier = pipeline("text-classification", model="path/to/{MERGED}")
classifier("The pasta was cold and the waiter ignored us.", truncation=True)
```
"""
