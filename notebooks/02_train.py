# %% [markdown]
# # 02 · Train one configuration
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/bertpeft/bertpeft/blob/main/notebooks/02_train.ipynb)
#
# Experiment A compares six ways to fine-tune the same BERT, from training nothing to training everything:
#
# | configuration | what trains |
# |---|---|
# | `none` | nothing: the untrained head's accuracy is the floor |
# | `head` | the classifier head only |
# | `head+1`, `head+2` | the head and the 1 or 2 encoder layers **nearest the head** (the top of the stack) |
# | `lora` | LoRA matrices (r=4) on every layer's query and value projections, plus the head |
# | `full` | every weight |
#
# "First layers" could mean either end of the encoder. We unfreeze the layers nearest the head: the gradient
# then stops at the lowest trainable layer, so the frozen layers below cost only a forward pass. Papermill runs
# this notebook once per configuration (and seed).

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
configuration = "full"  # str: none, head, head+N, lora or full
seed = None  # int | None: training seed (head initialisation, batch order); None: the run's
progress = "auto"  # str: auto, bar (tqdm) or lines (plain text, for logs)

# %%
from bertpeft.notebook import notebook_config, show_config

config = notebook_config(output, profile, settings, configuration=configuration, seed=seed, progress=progress)
show_config(config)

# %% [markdown]
# ## 1. What trains: parameter counts
# The six configurations on this model's architecture, counted without loading any weights. On bert-base-cased
# with a 2-label head the counts are 0; 1,538; 7,089,410; 14,177,282; 148,994; 108,311,810.
#
# **Why the write-up printed 150,532 for LoRA.** 148,994 = 147,456 LoRA weights (12 layers x 2 projections x
# (768x4 + 4x768)) + 1,538 for the head. PEFT keeps the head trainable by wrapping it in `modules_to_save`, which
# holds the original head and a trainable copy; older PEFT releases left the original's `requires_grad` on as
# well, so the head was counted twice: 148,994 + 1,538 = 150,532. Only the copy is trained and saved.

# %%
import pandas as pd

from bertpeft.models import configuration_table

table = pd.DataFrame(configuration_table(config.model, base=config))
table.style.format({"trainable_params": "{:,}", "total_params": "{:,}", "trainable_percent": "{:.4f}"}).apply(
    lambda row: ["font-weight: bold" if row["config"] == config.configuration else "" for _ in row], axis=1
)

# %% [markdown]
# ## 2. Train and evaluate
# `train_configuration` trains, then evaluates the test reviews once (the Trainer's own evaluation and checkpoint
# after the last step, which transformers 5 adds, are cancelled: one pass is enough, and a finished run's
# checkpoint would only be deleted), re-checks the metrics with an independent inference loop
# (`benchmark_accuracy`), and writes one JSON into the run folder's `results/`. `train_seconds` times the
# optimizer steps alone, without evaluations, saves and model loading (each recorded apart). An interrupted run
# resumes from its last checkpoint.

# %%
from bertpeft.training import summary, train_configuration

result = train_configuration(config)
print(summary(result))

# %% [markdown]
# ## 3. Loss curve and metrics

# %%
from bertpeft.plots import plot_loss_curve

plot_loss_curve(result)
# %%
keys = [
    "accuracy",
    "precision",
    "recall",
    "f1",
    "benchmark_accuracy",
    "trainable_params",
    "train_seconds",
    "train_samples_per_second",
    "peak_memory_mb",
]
pd.Series({k: result.get(k) for k in keys}, name=result["name"]).to_frame()
