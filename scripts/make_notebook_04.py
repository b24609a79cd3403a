"""Writes notebooks/04_results.ipynb (no outputs). Run from the repository root: python scripts/make_notebook_04.py"""

import sys

sys.path.insert(0, "scripts")
from notebook_tools import code, md, write_notebook  # noqa: E402

write_notebook(
    "notebooks/04_results.ipynb",
    "04 · Results: six configurations compared",
    """The training notebook (02) wrote one JSON per configuration and seed into the run folder's `results/`.
This notebook reads only those files: it builds the results table (saved as `results.csv`), draws the
figures of Experiment A (saved as PNGs in the run's `figures/`), and lets you look at what each trained
configuration predicts. Nothing is retrained here.""",
    """profile = "smoke"  # str: the run's profile (its default run folder, when output is None)
output = None  # str | None: run folder to report on
interactive = True  # bool: ipywidgets for exploring; `bertpeft run` sets False (papermill has no live frontend)
quote_reviews = True  # bool: show review texts (False for notebooks you publish: only lengths are shown)""",
    [
        code("""from pathlib import Path

from bertpeft import profile_config

run_dir = Path(output or profile_config(profile).output)
figures = run_dir / "figures"
print(f"run folder: {run_dir}")"""),
        md("""## 1. The results table
One row per configuration and seed, in increasing complexity. `benchmark_accuracy` comes from an independent
inference loop (`PerformanceBenchmark`), not from the Trainer: the two must agree. `train_seconds` is the
Trainer's training time alone; `peak_memory_mb` is the GPU's peak on CUDA and the process's peak RSS on a CPU."""),
        code("""from bertpeft.report import SHOWN, write_results_csv

table = write_results_csv(run_dir)
print(f"{table['model'].iloc[0]} on {table['device'].iloc[0]}, profile {table['profile'].iloc[0]}")
table[list(SHOWN)].round(4)"""),
        code("""mismatch = (table["accuracy"] - table["benchmark_accuracy"]).abs().max()
print(f"largest Trainer vs benchmark accuracy difference: {mismatch:.4f}")"""),
        md("""Where a configuration ran with several seeds, the mean and the standard deviation over seeds say how
much of a difference between two configurations is noise."""),
        code("""from bertpeft.report import summary_over_seeds

summary_over_seeds(table, formatted=True)"""),
        md("""## 2. Metrics per configuration
Experiment A's figure. With two balanced classes, 0.5 (dotted line) is chance: an untrained head sits there,
whatever its precision and recall (which show whether it says "positive" to everything or to nothing)."""),
        code("""from bertpeft.plots import plot_metrics_per_configuration, save_figure

fig = plot_metrics_per_configuration(table)
save_figure(fig, figures, "metrics_per_configuration");"""),
        md("""## 3. Accuracy against trainable parameters
The x axis is logarithmic: from 0 (`none`) through about a thousand (`head`) and a hundred thousand (`lora`)
to the whole model (`full`). Does accuracy follow the number of trained weights, and where does LoRA sit?"""),
        code("""from bertpeft.plots import plot_accuracy_vs_parameters

fig = plot_accuracy_vs_parameters(table)
save_figure(fig, figures, "accuracy_vs_trainable_parameters");"""),
        md("""## 4. Training time per configuration
Experiment A's second figure. Freezing the lower layers saves their backward pass; LoRA freezes every weight of
the encoder but still back-propagates through all its layers to reach the adapters in the lowest one, so it
saves less time than its parameter count suggests."""),
        code("""from bertpeft.plots import plot_training_time

fig = plot_training_time(table)
save_figure(fig, figures, "training_time_per_configuration");"""),
        md("## 5. Loss curves"),
        code("""from bertpeft.plots import plot_loss_curves
from bertpeft.results import read_results

fig = plot_loss_curves(read_results(run_dir))
save_figure(fig, figures, "loss_curves");"""),
        md("""## 6. What do the configurations predict?
Every trained configuration, rebuilt from its saved weights (`models/<config>-seed<seed>/`), on the same
reviews. Run this notebook in Jupyter or Colab to type your own review or pick one; an executed copy from
`bertpeft run` shows four example reviews instead: plainly positive, plainly negative, mixed, and an idiom
("melted in my mouth") that small models trained on a few thousand reviews tend to read as a complaint."""),
        code("""from bertpeft.explore import prediction_explorer

prediction_explorer(run_dir, interactive=interactive, quote=quote_reviews)"""),
        md("""## 7. Which test reviews do they get wrong?
Mistakes per configuration, the most confident first. Interactively, pick a configuration and step through its
mistakes; the executed copy lists the two most confident mistakes of each, with its number of errors."""),
        code("""from bertpeft.explore import misclassified_browser

misclassified_browser(run_dir, interactive=interactive, quote=quote_reviews)"""),
    ],
)
