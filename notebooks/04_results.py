# %% [markdown]
# # 04 · Results: six configurations compared
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/bertpeft/bertpeft/blob/main/notebooks/04_results.ipynb)
#
# The training notebook (02) wrote one JSON per configuration and seed into the run folder's `results/`.
# This notebook reads only those files: it builds the results table (saved as `results.csv`), draws the
# figures of Experiment A (saved as PNGs in the run's `figures/`), and lets you look at what each trained
# configuration predicts. Nothing is retrained here.

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
interactive = True  # bool: ipywidgets for exploring; `bertpeft run` sets False (papermill has no live frontend)
quote_reviews = True  # bool: show review texts (False for notebooks you publish: only lengths are shown)

# %%
from pathlib import Path

from bertpeft.layout import RunDir
from bertpeft.notebook import notebook_config, run_story
from bertpeft.report import require_results

config = notebook_config(output, profile, settings, create=False)
run_dir = Path(config.output)
require_results(run_dir)  # an empty run folder stops here, saying what to run first
figures = RunDir(run_dir).figures
print(f"run folder: {run_dir}")
print(run_story(config))

# %% [markdown]
# ## 1. The results table
# One row per configuration and seed, in increasing complexity. `benchmark_accuracy` comes from an independent
# inference loop (`PerformanceBenchmark`), not from the Trainer: the two must agree. `train_seconds` is the
# training loop alone (the optimizer steps); `peak_memory_mb` is the GPU's peak on CUDA and the process's peak RSS
# on a CPU. `results.csv` in the run folder holds every column, intervals included.

# %%
from bertpeft.report import SHOWN, shown_table, write_results_csv

table = write_results_csv(run_dir)
print(f"{table['model'].iloc[0]} on {table['device'].iloc[0]}, profile {table['profile'].iloc[0]}")
shown_table(table[list(SHOWN)])

# %%
mismatch = (table["accuracy"] - table["benchmark_accuracy"]).abs().max()
print(f"largest Trainer vs benchmark accuracy difference: {mismatch:.4f}")

# %% [markdown]
# Where a configuration ran with several seeds, the mean and the standard deviation over seeds say how
# much of a difference between two configurations is noise.

# %%
from bertpeft.report import summary_over_seeds

summary_over_seeds(table, formatted=True)

# %% [markdown]
# ## 2. Metrics per configuration
# Experiment A's figure. With two balanced classes, 0.5 (dotted line) is chance: an untrained head sits there,
# whatever its precision and recall (which show whether it says "positive" to everything or to nothing).

# %%
from bertpeft.plots import plot_metrics_per_configuration, save_figure

fig = plot_metrics_per_configuration(table)
saved = save_figure(fig, figures, "metrics_per_configuration")  # figures/NAME.png in the run folder
# %% [markdown]
# ## 3. Accuracy against trainable parameters
# The x axis is logarithmic: from 0 (`none`) through about a thousand (`head`) and a hundred thousand (`lora`)
# to the whole model (`full`). Does accuracy follow the number of trained weights, and where does LoRA sit?

# %%
from bertpeft.plots import plot_accuracy_vs_parameters

fig = plot_accuracy_vs_parameters(table)
saved = save_figure(fig, figures, "accuracy_vs_trainable_parameters")  # figures/NAME.png in the run folder
# %% [markdown]
# ## 4. Training time per configuration
# Experiment A's second figure, timing the training loop alone (evaluations, saves and model loading are recorded
# apart). What to expect: freezing the lower layers spares their backward pass, so `head` and `head+N` should be
# quicker than `full`; LoRA freezes every weight of the encoder but still back-propagates through all its layers to
# reach the adapters in the lowest one, so it saves less time than its parameter count suggests. Whether this run
# shows it is in the findings at the end; on a shared or small machine, single runs vary by several seconds.

# %%
from bertpeft.plots import plot_training_time

fig = plot_training_time(table)
saved = save_figure(fig, figures, "training_time_per_configuration")  # figures/NAME.png in the run folder
# %% [markdown]
# A whole training's seconds move with everything else the machine does. The time per step, divided by full
# fine-tuning's step with the same seed (same batches), is the steadier measure: the bar is the median over seeds,
# each dot one seed, and the whisker the spread of one configuration's steps (10th to 90th percentile; batches of
# long reviews take longer).

# %%
from bertpeft.plots import plot_step_time_relative
from bertpeft.report import step_time_relative

fig = plot_step_time_relative(table)
saved = save_figure(fig, figures, "step_time_relative_to_full")  # figures/NAME.png in the run folder
relative = step_time_relative(table)
shown_table(relative) if len(relative) else print("no timed full fine-tuning in this run: nothing to compare against")
# %% [markdown]
# ## 5. Accuracy against training time, and is a difference real?
# What Experiment A weighed: how much accuracy each configuration buys for its training time. The error bars are
# 95% intervals that hold both sources of variation: with several seeds a two-level bootstrap draws seeds, then
# test reviews, with replacement (with one seed, the Wilson interval over the reviews). Intervals that overlap do
# not settle a ranking. The paired test below does: each configuration against full fine-tuning on the same test
# reviews, the accuracy difference pooled over the seeds both trained with, its interval and p-value from the same
# two-level bootstrap, and Holm's correction over all the comparisons, so that a "differs" is not one chance
# finding among many. A difference without evidence is reported as such, not as equality.

# %%
from bertpeft.layout import read_results
from bertpeft.plots import plot_accuracy_vs_training_time

if (table["config"] != "none").any():
    fig = plot_accuracy_vs_training_time(table)
    save_figure(fig, figures, "accuracy_vs_training_time")
else:
    print("no trained configuration in this run yet")

# %%
from bertpeft.report import paired_tests

pairs = paired_tests(read_results(run_dir), reference="full")
shown_table(pairs) if len(pairs) else print("no full fine-tuning in this run: nothing to compare against")

# %% [markdown]
# ## 6. Loss curves

# %%
from bertpeft.plots import plot_loss_curves

fig = plot_loss_curves(read_results(run_dir))
saved = save_figure(fig, figures, "loss_curves")  # figures/NAME.png in the run folder
# %% [markdown]
# ## 7. What do the configurations predict?
# Every trained configuration, rebuilt from its saved weights (`models/<config>-seed<seed>/`), on the same
# reviews. Run this notebook in Jupyter or Colab to type your own review or pick one; an executed copy from
# `bertpeft run` shows four example reviews instead: plainly positive, plainly negative, mixed, and an idiom
# ("melted in my mouth") that small models trained on a few thousand reviews tend to read as a complaint.

# %%
from bertpeft.explore import prediction_explorer

prediction_explorer(run_dir, interactive=interactive, quote=quote_reviews)

# %% [markdown]
# ## 8. Which test reviews do they get wrong?
# Mistakes per configuration, the most confident first. Interactively, pick a configuration and step through its
# mistakes; the executed copy lists the two most confident mistakes of each, with its number of errors.

# %%
from bertpeft.explore import misclassified_browser

misclassified_browser(run_dir, interactive=interactive, quote=quote_reviews)

# %% [markdown]
# ## 9. Error analysis: how they go wrong, and the reviews none of them gets right
# A confusion matrix per configuration (its seeds pooled) says whether the mistakes lean one way: a model that
# calls too many reviews negative has a large upper-right cell. Below it, the test reviews that every trained
# configuration gets wrong with every seed: no amount of training here fixes those, so they say more about the
# reviews (mixed verdicts, sarcasm, a rating that disagrees with its text, a review cut at `max_length`) than about
# any one configuration.

# %%
from bertpeft.explore import hard_reviews
from bertpeft.plots import plot_confusion_matrices

fig = plot_confusion_matrices(read_results(run_dir))
saved = save_figure(fig, figures, "confusion_matrices")

# %%
count, hardest = hard_reviews(run_dir, quote=quote_reviews)
print(
    f"{count:,} of {config.n_test:,} test reviews are wrong in every trained configuration and seed; the most confident mistakes:"
)
hardest

# %% [markdown]
# ## What we found

# %%
from IPython.display import Markdown

from bertpeft.report import results_takeaways

Markdown(results_takeaways(table, pairs))
