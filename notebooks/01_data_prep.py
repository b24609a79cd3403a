# %% [markdown]
# # 01 · Data preparation: Yelp reviews for BERT
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/bertpeft/bertpeft/blob/main/notebooks/01_data_prep.ipynb)
#
# We fine-tune BERT to tell positive from negative Yelp reviews. This notebook loads the reviews (from the
# Hugging Face Hub, or from local files with `settings = {"data": "path/to/folder"}`), draws a seeded random sample stratified by
# label, shows what the tokenizer makes of a review, looks at review lengths, and saves the tokenized sample into
# the run folder, where the training notebook (02) picks it up. It takes seconds on any machine.
#
# The series reproduces and extends two write-ups: **Experiment A**, a blog post comparing six ways to fine-tune
# BERT on Yelp polarity with W&B tracking, which asked why LoRA trained slower than full fine-tuning; and
# **Experiment B**, "PEFT with BERT" by Jao Ming (Medium, September 2023), which trains a LoRA adapter on
# five-star Yelp reviews, then merges and exports it.
#
# **In order:** 01 prepares the data, 02 trains the six configurations, 03 saves, reloads, merges and exports the
# LoRA adapter, 04 compares the results, 05 measures why LoRA is not faster per step. On Colab, run them in order
# in one runtime; keep the run folder on Google Drive (`output = "/content/drive/MyDrive/bertpeft/quick"` after
# mounting Drive) and a disconnect loses nothing: every notebook picks up what the folder already holds.

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
quote_reviews = True  # bool: show review texts (False for notebooks you publish: only lengths are shown)

# %%
from bertpeft.notebook import notebook_config, show_config

config = notebook_config(output, profile, settings)
show_config(config)

# %% [markdown]
# ## 1. Load the reviews
# The same call loads the Hub's `yelp_polarity` (canonical id `fancyzhx/yelp_polarity`) or a local folder in its
# schema (`label,text`). Every check runs here: missing columns, labels that cannot be classes, a single class, an
# empty text, files that are not UTF-8; each fails with one line that names the fix.

# %%
from bertpeft.data import load_reviews

raw = load_reviews(config)
print(", ".join(f"{split}: {len(rows):,} reviews" for split, rows in raw.items()))

# %% [markdown]
# `load_reviews` is where `datasets.load_dataset` runs: on a Hub id as it is, on a local folder once per file with the
# file's format (`csv`, `json` or `parquet`); the checks follow.

# %%
from bertpeft.notebook import show_source

show_source(load_reviews)

# %% [markdown]
# ### Your own reviews
# Your data need not be in that schema. A folder with `train` and `test` files in CSV, TSV, JSON Lines or Parquet
# will do, with the text in a column named `text`, `sentence`, `review`, `review_text`, `content` or `body` and the
# label in one named `label`, `labels`, `sentiment`, `stars`, `rating`, `class` or `target` (or name them:
# `settings={"text_column": ..., "label_column": ...}`, `--text-column`/`--label-column` on the command line).
# Labels may be ids 0..K-1, star ratings 1..K, or names: names become ids in sorted order, and the model, the
# results and the export keep the names. Two made-up files of that kind, loaded the same way:

# %%
import tempfile
from pathlib import Path

own = Path(tempfile.mkdtemp()) / "my-reviews"
own.mkdir()
made_up = {
    "train": [("pos", "Lovely staff and quick service."), ("neg", "Cold food, long wait."), ("pos", "Will return!")],
    "test": [("neg", "Never again."), ("pos", "Best tacos in town.")],
}
for split, rows in made_up.items():
    lines = ["sentiment\tsentence", *(f"{label}\t{text}" for label, text in rows)]
    (own / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
mine = load_reviews(str(own))
print(
    "label names:",
    mine["train"].features["label"].names,
    "| labels of the training file:",
    list(mine["train"]["label"]),
)

# %% [markdown]
# ## 2. A seeded, stratified random sample
# Taking the first rows would give whatever order the file has; we sample at random, keeping each class's share,
# with a fixed seed so every configuration trains on the same reviews.

# %%
from bertpeft.data import class_balance, sample_with_leakage

sample, leakage = sample_with_leakage(
    raw, config.n_train, config.n_test, config.data_seed, config.n_validation, config.drop_leaked
)
balance = class_balance(sample)
balance

# %% [markdown]
# A test review that also sits in the training file (copied, or posted twice) measures memory, not
# generalisation. We compare texts after normalising whitespace (stripped, runs of spaces and line breaks made one
# space; case kept) and count the test reviews found in the training sample, in the validation split and anywhere
# in the training file. The setting `drop_leaked` (`--drop-leaked true`) draws the test split only from reviews
# the training file does not hold.

# %%
from bertpeft.data import leakage_sentence

print(leakage_sentence(leakage, len(sample["test"])))

# %% [markdown]
# The first reviews of the sample, with their label and length (texts are shown only when `quote_reviews` is on:
# the published copies of these notebooks do not redistribute Yelp's reviews).

# %%
from bertpeft.data import preview_reviews

preview_reviews(sample["train"], 5, quote=quote_reviews)

# %% [markdown]
# ## 3. What the tokenizer makes of a review
# BERT does not read words: its tokenizer cuts the text into word pieces from a fixed vocabulary (a rare word
# becomes several pieces, continuations marked `##`), adds `[CLS]` in front (the classifier reads its vector) and
# `[SEP]` at the end, and maps each piece to its id. The attention mask is 1 for real tokens and 0 for padding.
# Here a made-up review, written for this tutorial:

# %%
import pandas as pd

from bertpeft.explore import EXAMPLE_REVIEWS
from bertpeft.models import load_tokenizer

tokenizer = load_tokenizer(config.model)
review = EXAMPLE_REVIEWS[2]
encoded = tokenizer(review)
print(review)
pd.DataFrame(
    {
        "token": tokenizer.convert_ids_to_tokens(encoded["input_ids"]),
        "input_id": encoded["input_ids"],
        "attention_mask": encoded["attention_mask"],
    }
).T

# %% [markdown]
# Two reviews in one batch are padded to the longer one; the mask tells the model which positions to ignore.

# %%
batch = tokenizer([EXAMPLE_REVIEWS[3], EXAMPLE_REVIEWS[0]], padding=True)
for ids, mask in zip(batch["input_ids"], batch["attention_mask"]):
    print(" ".join(tokenizer.convert_ids_to_tokens(ids)))
    print("mask:", mask)

# %% [markdown]
# ## 4. How long are the reviews in tokens?
# Padding every review to `max_length` (the write-ups' `padding="max_length"`) makes the model read pad tokens.
# Padding each batch to its longest review instead (dynamic padding) reads far fewer: the ratio below is how many
# times more tokens padding to `max_length` costs.

# %%
from bertpeft.data import padding_waste, token_lengths
from bertpeft.plots import plot_token_lengths

lengths = token_lengths(sample["train"], tokenizer)
fig = plot_token_lengths(lengths, config.max_length)
waste = padding_waste(lengths, config.max_length)
print(
    f"median {waste['median_tokens']:.0f} tokens, 90% of reviews under {waste['p90_tokens']:.0f}; "
    f"{waste['truncated_share']:.1%} are cut at max_length {config.max_length}; padding every review to "
    f"max_length would read {waste['max_length_over_real_tokens']:.1f}x the real tokens"
)

# %% [markdown]
# ## 5. Tokenize and save into the run folder
# Truncation at `max_length`, no padding here: the training collator pads per batch. `prepare_reviews` samples the
# splits as above and tokenizes each with `tokenize_reviews`, one `.map` over the dataset in batches:

# %%
from bertpeft.data import prepare_reviews, tokenize_reviews

show_source(tokenize_reviews)

# %%
prepared, meta = prepare_reviews(config, tokenizer)
rows = ", ".join(f"{split} {n:,}" for split, n in meta["rows"].items())
labels = ", ".join(f"{k} = {v}" for k, v in meta["id2label"].items())
print(f"saved {rows} reviews to {config.run_dir / 'prepared'}; labels {labels}")

# %% [markdown]
# ## What we found

# %%
from IPython.display import Markdown

from bertpeft.data import data_takeaways

Markdown(data_takeaways(meta, balance, waste, config.max_length))
