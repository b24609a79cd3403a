# %% [markdown]
# # 01 · Data preparation: Yelp reviews for BERT
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/bertpeft/bertpeft/blob/main/notebooks/01_data_prep.ipynb)
#
# We fine-tune BERT to tell positive from negative Yelp reviews. This notebook loads the reviews (from the
# Hugging Face Hub, or from local files with `data = "path/to/folder"`), draws a seeded random sample stratified by
# label, looks at the classes and at review lengths, and saves the tokenized sample into the run folder, where the
# training notebook (02) picks it up.

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
# schema (`label,text`). Every check runs here: missing columns, labels that are not 0..K-1, a single class,
# files that are not UTF-8; each fails with one line that names the fix.

# %%
from bertpeft.data import load_reviews

raw = load_reviews(config.data)
raw

# %% [markdown]
# ## 2. A seeded, stratified random sample
# Taking the first rows would give whatever order the file has; we sample at random, keeping each class's share,
# with a fixed seed so every configuration trains on the same reviews.

# %%
from bertpeft.data import class_balance, sample_reviews

sample = sample_reviews(raw, config.n_train, config.n_test, config.data_seed, config.n_validation)
class_balance(sample)

# %%
from bertpeft.data import preview_reviews

preview_reviews(sample["train"], 5, quote=quote_reviews)

# %% [markdown]
# ## 3. How long are the reviews in tokens?
# Padding every review to `max_length` (the write-ups' `padding="max_length"`) makes the model read pad tokens.
# Padding each batch to its longest review instead (dynamic padding) reads far fewer: the ratio below is how many
# times more tokens padding to `max_length` costs.

# %%
from bertpeft.data import padding_waste, token_lengths
from bertpeft.models import load_tokenizer
from bertpeft.plots import plot_token_lengths

tokenizer = load_tokenizer(config.model)
lengths = token_lengths(sample["train"], tokenizer)
plot_token_lengths(lengths, config.max_length)
padding_waste(lengths, config.max_length)

# %% [markdown]
# ## 4. Tokenize and save into the run folder
# Truncation at `max_length`, no padding here: the training collator pads per batch.

# %%
from bertpeft.data import prepare_reviews

prepared, meta = prepare_reviews(config, tokenizer)
print(f"saved {meta['rows']} to {config.run_dir / 'prepared'}; labels {meta['id2label']}")
