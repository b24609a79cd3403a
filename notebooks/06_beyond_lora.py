# %% [markdown]
# # 06 · Beyond LoRA: parameter-efficient methods compared on an encoder
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/bertpeft/bertpeft/blob/main/notebooks/06_beyond_lora.ipynb)
#
# Comparisons of parameter-efficient fine-tuning are almost all about large decoder models. This notebook compares
# the methods PEFT offers on a "medium" encoder, with the same harness as Experiment A: the same reviews, the same
# training budget, several seeds, exact parameter counts. Each method trains beside the same classifier head:
#
# | method | what trains (besides the head) |
# |---|---|
# | `embeddings+logreg` | no network at all: a logistic regression (scikit-learn) on the frozen encoder's mean-pooled embeddings |
# | `head` | nothing else: the encoder is frozen (Experiment A's baseline) |
# | `bitfit` | every bias term of the encoder (no library needed) |
# | `lora-r1`, `lora` (r=4), `lora-r16`, `lora-r64` | LoRA's B·A beside the attention's query and value projections, at rank 1 to 64 |
# | `lora-r1-a8`, `lora-r16-a8`, `lora-r64-a8` | the same ranks with alpha kept at 8, so the update's scale alpha/r falls as the rank grows |
# | `rslora-r1`, `rslora-r16`, `rslora-r64` | the same ranks under rsLoRA's alpha/√r, alpha kept at 8 |
# | `dora` | LoRA, with the update split into a direction and a trained magnitude per output feature |
# | `rslora` | LoRA scaled by alpha/√r instead of alpha/r (r=4) |
# | `adalora` | LoRA in SVD form, starting at rank 6 and pruning to an average of 4 by importance |
# | `loha`, `lokr` | the update as a Hadamard or a Kronecker product of low-rank factors |
# | `vera` | two scaling vectors per matrix around frozen random matrices shared by all layers |
# | `fourierft` | 1,000 spectral coefficients per matrix, turned into the update by an inverse Fourier transform |
# | `ia3` | vectors that rescale the keys, the values and the feed-forward activations |
# | `pissa`, `olora` | LoRA started from the weights themselves instead of B = 0: their top singular vectors (PiSSA) or their QR decomposition (OLoRA); the base keeps the remainder, so the export turns the adapter into a plain LoRA of twice the rank |
# | `delora` | a rank-4 update, normalised, with a trained bound on its size |
# | `shira` | a sparse update: as many trained weights per matrix as rank-4 LoRA, at random positions |
# | `vblora` | LoRA's factors assembled from a small bank of trained vectors shared by every matrix |
# | `randlora` | frozen random bases shared by all layers, their scalings trained |
# | `miss` | one trained shard of rows per matrix, repeated across it |
# | `oft`, `hra` | the weights rotated instead of added to: a block-diagonal orthogonal matrix (OFT) or a chain of 8 Householder reflections (HRA) |
# | `waveft` | 1,000 wavelet coefficients per matrix |
# | `ln_tuning` | a trained copy of every LayerNorm's scale and shift |
# | `prefix` | 20 trained key and value vectors in every attention layer |
# | `prompt` | 20 trained input embeddings placed before each review |
# | `full` | every weight (Experiment A's upper end) |
#
# The rank is swept three ways because rank and scale are two knobs: `lora-rN` scales alpha along (alpha = 2r), so
# every rank adds an update of the same size and only its capacity changes; `lora-rN-a8` keeps alpha, so a larger
# rank also means a smaller update per direction; rsLoRA's alpha/√r sits between them. Where the three lines part,
# the scale matters, not only the rank.
#
# `embeddings+logreg` is the baseline people ask about first, because it takes seconds on a CPU: every review becomes
# the mean of the encoder's last-layer token vectors (how sentence-embedding checkpoints such as all-MiniLM-L6-v2
# are meant to be read), and a logistic regression on those vectors, its regularisation chosen on the validation
# reviews, is the classifier. `head` instead trains a linear layer on the [CLS] pooler output by gradient descent.
#
# The run behind this notebook trained each of them with `bertpeft run --profile methods` (or with notebook 02 per
# configuration); this notebook reads the results, exports each adapter and times it. Nothing is retrained here.

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
# (`run_config.json`); `profile` and `settings` apply when the folder has none yet.

# %% tags=["parameters"]
profile = None  # str | None: the run folder's own (it holds its settings); methods for a folder without any
settings = {}  # dict: settings that differ from the profile's, e.g. {"n_train": 500}
output = "runs/methods"  # str: run folder (runs/methods: where bertpeft run --profile methods trains)
n_reviews = 128  # int: test reviews the inference timing runs on

# %%
from pathlib import Path

from bertpeft.layout import RunDir
from bertpeft.notebook import notebook_config, run_story
from bertpeft.report import require_results, write_results_csv

config = notebook_config(output, profile, settings, create=False)
run_dir = Path(config.output)
require_results(run_dir)  # an empty run folder stops here, saying what to run first
figures = RunDir(run_dir).figures
table = write_results_csv(run_dir)
print(f"run folder: {run_dir}")
print(run_story(config))
print(f"{table['model'].iloc[0]} on {table['device'].iloc[0]}: {table['config'].nunique()} configurations")

# %% [markdown]
# ## 1. What each method trains, and how well it does
# Trainable parameters are counted exactly (`bertpeft params --configs ...` gives the same numbers without
# training). Accuracy is on the test reviews, with a 95% interval: over the seeds and the test reviews (a two-level
# bootstrap) when the run has several seeds, else over the test reviews (Wilson). `learning_rate` is the rate each
# trained at: chosen on the validation reviews from a grid around its default (`tune_lr`, the `methods` profile's
# way: the rate is searched on the first seed, the other seeds train at it, and the test reviews are read only
# after the choice), or the registry's default. `step_vs_full` is the median time per training step divided by
# full fine-tuning's with the same seed, so the same batches; `peak_memory_mb` the training's peak (process RSS on a
# CPU, allocated memory on a GPU); `train_seconds` the median training time (the optimizer steps alone; for
# `embeddings+logreg`, embedding the training and validation reviews and fitting the regressions).

# %%
from bertpeft.methods import method_summary_table
from bertpeft.report import shown_table

summary = method_summary_table(table)
shown_table(summary.drop(columns=["interval"]))

# %% [markdown]
# ## 2. Accuracy against trainable parameters
# The question of the second write-up: how few weights can be trained before accuracy drops? A point is on the
# Pareto front (filled, joined) when no other configuration trains fewer parameters *and* does better.

# %%
from bertpeft.methods import plot_pareto
from bertpeft.plots import save_figure

trained = summary[summary["trainable_params"] > 0]
fig = plot_pareto(
    trained, "trainable_params", "trainable parameters (log scale)", "Accuracy against trainable parameters", log=True
)
saved = save_figure(fig, figures, "methods_accuracy_vs_parameters")  # figures/NAME.png in the run folder
# %% [markdown]
# ## 3. Accuracy against time per training step
# Fewer trained weights do not make a step proportionally cheaper: every method still runs the whole encoder
# forward, and all but `head` back-propagate through it. The x axis is the time per step relative to full
# fine-tuning's (1.0); `embeddings+logreg` takes no steps and is left out.

# %%
fig = plot_pareto(
    trained, "step_vs_full", "time per training step / full fine-tuning's", "Accuracy against time per step"
)
saved = save_figure(fig, figures, "methods_accuracy_vs_step_time")  # figures/NAME.png in the run folder
# %% [markdown]
# ## 4. Peak memory

# %%
from bertpeft.methods import plot_peak_memory

fig = plot_peak_memory(trained)
saved = save_figure(fig, figures, "methods_peak_memory")  # figures/NAME.png in the run folder

# %% [markdown]
# ## 5. Adapters on disk, merged or not
# Each PEFT method's adapter is saved alone, reloaded onto a freshly loaded base model with plain peft and checked
# against the trained model; where the method can merge, `merge_and_unload()` folds it into the weights and the
# merged model is checked against the adapter (logits within 1e-4). Then both are timed on the same test
# reviews: the adapter left on the base model pays its extra work on every call; a merged model costs what the base
# model costs. Prefix and prompt tuning cannot merge: their vectors are extra inputs, not a change of any weight.

# %%
from bertpeft.methods import export_and_time

exports = export_and_time(run_dir, summary["config"], n_reviews=n_reviews)
shown_table(exports)

# %% [markdown]
# ## 6. Is a difference real?
# Each configuration against LoRA (r=4) on the same test reviews: the accuracy difference pooled over the seeds
# both trained with, a 95% interval and p-value from a two-level bootstrap (seeds, then reviews), and Holm's
# correction over every comparison in the table (`p_holm`; `differs` where it is below 0.05).

# %%
from bertpeft.layout import read_results
from bertpeft.report import paired_tests

pairs = paired_tests(read_results(run_dir), reference="lora")
shown_table(pairs) if len(pairs) else print("no lora in this run: nothing to pair against")

# %% [markdown]
# ## What we found

# %%
from IPython.display import Markdown

from bertpeft.methods import methods_takeaways

Markdown(methods_takeaways(summary, exports, pairs, table))
