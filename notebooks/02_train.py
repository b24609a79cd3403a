# %% [markdown]
# # 02 · Train: six ways to fine-tune BERT
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/bertpeft/bertpeft/blob/main/notebooks/02_train.ipynb)
#
# Experiment A compares six ways to fine-tune the same BERT, from training nothing to training everything:
#
# | configuration | what trains |
# |---|---|
# | `none` | nothing: the untrained head's accuracy is the floor |
# | `head` | the classifier head only (the task head: every layer added on top of the pretrained encoder) |
# | `head+1`, `head+2` | the head and the 1 or 2 encoder layers **nearest the head** (the top of the stack) |
# | `lora` | small LoRA matrices beside every layer's query and value projections, plus the head |
# | `full` | every weight |
#
# "First layers" could mean either end of the encoder. We unfreeze the layers nearest the head: the gradient
# then stops at the lowest trainable layer, so the frozen layers below cost only a forward pass.
#
# Run by hand, this notebook trains every configuration of the run, one after another, and skips those the run
# folder already holds (so a disconnected Colab session picks up where it stopped). `bertpeft run` executes it
# once per configuration and seed instead. On a 2-core CPU the `quick` profile (MiniLM, 2,000 reviews) takes one
# to three minutes per configuration, about four times that when learning rates are tuned; the `paper` profile
# (bert-base-cased, 10,000 reviews of up to 512 tokens) is for a GPU.

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
configuration = None  # str | None: train this one configuration (None: every configuration of the run)
seed = None  # int | None: training seed (head initialisation, batch order); None: the run's seeds
progress = "auto"  # str: auto, bar (tqdm) or lines (plain text, for logs)

# %%
from bertpeft.notebook import notebook_config, show_config

config = notebook_config(output, profile, settings, seed=seed, progress=progress)
configurations = [configuration] if configuration else list(config.configurations)
seeds = [seed] if seed is not None else list(config.seeds)
show_config(config)
print(f"training: {', '.join(configurations)} (seeds {', '.join(map(str, seeds))})")

# %% [markdown]
# ## 1. The picture
# BERT reads a review as a sequence of token vectors: the embeddings turn tokens into vectors, then each encoder
# layer (12 in bert-base, 6 in MiniLM) refines every vector by attending to the others. The **pooler** passes the
# vector of the first token, `[CLS]`, through one dense layer; the **classifier** maps it to one score per label.
# The pooler is pretrained and stays frozen in every configuration but `full`: it sits between the trained
# layers and the trained head, so `head+N` learns around it. The classifier is new and starts random.

# %%
from bertpeft.plots import plot_configurations

fig = plot_configurations()
# %% [markdown]
# **LoRA in a paragraph.** Instead of changing a pretrained weight matrix W (768 × 768 in bert-base), LoRA learns
# a low-rank update beside it: two small matrices, A (r × 768) and B (768 × r), whose product B·A has W's shape.
# The layer computes W x + (alpha / r) · B A x; `alpha / r` scales the update so that changing r does not change
# its size. B starts at zero, so at step 0 the model is exactly the pretrained one, and training moves it away
# only as far as the data asks. With r = 4, one projection trains 2 × 768 × 4 = 6,144 numbers instead of
# 589,824. We put LoRA on the attention's `query` and `value` projections, the choice of the LoRA paper: they
# decide what each token looks for and what it passes on (other encoders name them differently: `q_lin` and `v_lin`
# in DistilBERT, `query_proj` and `value_proj` in DeBERTa-v2; the default `lora_target_modules` `auto` picks each
# model type's, from PEFT's own table where it has one). After training, **merging** adds (alpha / r) · B A
# into W once: the merged model is a plain BERT again, with no extra cost per prediction (notebook 03).

# %%
from bertpeft.plots import plot_lora

fig = plot_lora(r=config.lora_r)
# %% [markdown]
# ## 2. Find the modules: print the model
# To freeze layers or point LoRA at a projection, you need the names of the modules. `print(model)` lists them
# all; here are the parts of the pretrained encoder (`model.base_model`), its first layer and the task head: the
# modules outside the encoder. Loading reports the head's weights as newly initialised (pretrained checkpoints
# have no head for our labels): that is expected, it is the part every configuration trains, so the report is
# silenced. BERT's pooler is part of the pretrained encoder; in other encoders the head is larger (DistilBERT's
# `pre_classifier`, DeBERTa's pooler, ModernBERT's `head` come new with the classifier), and their layer lists
# have other names: `task_head` and `encoder_layers` find both in any BERT-family encoder.

# %%
from transformers import AutoModelForSequenceClassification
from transformers.utils import logging

from bertpeft.data import load_prepared
from bertpeft.models import encoder_layers, load_tokenizer, resolve_model_source, task_head

tokenizer = load_tokenizer(config.model)
data, meta = load_prepared(config, tokenizer)  # the reviews notebook 01 tokenized into the run folder
logging.set_verbosity_error()  # the expected "newly initialized: classifier" report, on every load below
model = AutoModelForSequenceClassification.from_pretrained(
    resolve_model_source(config.model),  # a Hub id such as "bert-base-cased", or a local folder
    num_labels=meta["num_labels"],
)
print("pretrained encoder:", [name for name, _ in model.base_model.named_children()])
layers = encoder_layers(model)  # model.bert.encoder.layer in BERT
print(f"encoder layer 1 of {len(layers)}:", layers[0])
print("task head:", task_head(model))  # {"classifier": ...} in BERT

# %% [markdown]
# ## 3. The configurations as code
# Freezing is `requires_grad_(False)`: the optimizer then never touches those weights and backpropagation skips
# what it does not need. Below is the function that prepares a model for each configuration, exactly as
# `bertpeft train`, `bertpeft run` and this notebook run it (`bertpeft.models.apply_configuration`). Each
# configuration's family comes from one registry (`bertpeft.configurations`): `head+2` is family `layers`, LoRA
# and the methods of notebook 06 are family `peft`.

# %%
from bertpeft.models import add_peft, apply_configuration, peft_config
from bertpeft.notebook import constructor_call, show_source

show_source(apply_configuration)

# %% [markdown]
# LoRA is two calls to PEFT: a `LoraConfig` says where and how large, `get_peft_model` freezes the base model and
# adds A and B beside each target. `modules_to_save` keeps the task head trainable beside them and saves it with the
# adapter. `add_peft` makes both calls for every PEFT method; `peft_config` builds the method's config from the
# run's settings:

# %%
show_source(add_peft)

# %% [markdown]
# For LoRA on this model the config `add_peft` passes to `get_peft_model` is the call below (the settings that
# differ from PEFT's defaults): copy it to build the same adapter by hand.

# %%
lora = config.replace(configuration="lora")
lora_config = peft_config(model, lora)
print(constructor_call(lora_config, always=["r", "lora_alpha"]))
lora_model = apply_configuration(model, lora)
lora_model.print_trainable_parameters()

# %% [markdown]
# The same function on each configuration, counted on a weightless copy of the model (no weights loaded, so it is
# instant). On bert-base-cased with a 2-label head the counts are 0; 1,538; 7,089,410; 14,177,282; 148,994;
# 108,311,810.
#
# **Why Experiment A printed 150,532 for LoRA.** 148,994 = 147,456 LoRA weights (12 layers x 2 projections x
# (768x4 + 4x768)) + 1,538 for the head. PEFT keeps the head trainable by wrapping it in `modules_to_save`, which
# holds the original head and a trainable copy; older PEFT releases left the original's `requires_grad` on as
# well, so the head was counted twice: 148,994 + 1,538 = 150,532. Only the copy is trained and saved.

# %%
import pandas as pd

from bertpeft.models import configuration_table

counts = pd.DataFrame(configuration_table(config.model, base=config))
counts[["config", "trainable_params", "total_params", "trainable_percent"]].style.format(
    {"trainable_params": "{:,}", "total_params": "{:,}", "trainable_percent": "{:.4f}"}
).hide(axis="index")

# %% [markdown]
# Frozen layers can also skip their dropout: in a layer that trains nothing it regularises only indirectly, as noise
# in what the trained layers above see, and it costs time in every step. The Trainer switches the whole model to train
# mode before every step, so training adds a hook, `keep_frozen_parts_in_eval(model)`, that switches the wholly
# frozen embeddings and layers back to eval mode before each forward pass: `head` and `head+N` then step faster at
# the same accuracy (docs/findings.md compares both ways over three seeds). `frozen_dropout=True` keeps the
# Trainer's way.
#
# ## 4. The Trainer
# `TrainingArguments` holds the recipe; `Trainer` runs it. The arguments that depend on where it runs rather than
# on the experiment (the checkpoint folder, fp16 on a GPU, W&B or not, how progress shows) come from
# `runtime.arguments`. `DataCollatorWithPadding` pads each batch to its longest review, not to `max_length`.
# During training the Trainer evaluates the **validation** reviews every `eval_steps` steps; the test reviews are
# read once, after training. (transformers 5 would also evaluate and save a checkpoint after the last step; the
# library cancels both: the final evaluation runs once, explicitly, and a finished run needs no checkpoint.)
# `compute_metrics` turns the model's scores on a split into the four metrics.

# %%
from bertpeft.metrics import make_compute_metrics
from bertpeft.training import make_trainer, training_arguments

show_source(training_arguments, make_trainer, make_compute_metrics)

# %% [markdown]
# ## 5. Train and evaluate
# `fit` loads a fresh base model, prepares it with `apply_configuration`, builds its Trainer with `make_trainer` and
# calls `trainer.train()`; `predict_by_length` then reads the test reviews once with `trainer.predict`, in batches of
# similar length (less padding, the same predictions). Beside them `fit` keeps the plumbing:
# `add_bookkeeping` times the optimizer steps alone (evaluations, saves and loading are timed apart) and
# `checkpoint_to_resume` lets an interrupted training resume from its last checkpoint.

# %%
from bertpeft.training import fit, predict_by_length

show_source(fit, predict_by_length)

# %% [markdown]
# `train_configuration` runs them for one configuration and seed and writes one JSON into the run folder's
# `results/`; it also re-checks the metrics with an independent inference loop (`benchmark_accuracy`) and, with
# `tune_lr`, tries each rate of a small grid and keeps the best on the validation reviews before the test reviews
# are read (once per configuration: its other seeds train at the rate its first seed chose).

# %%
from bertpeft.training import finished_result, summary, train_configuration

results = []
for name in configurations:
    for each_seed in seeds:
        run = config.replace(configuration=name, seed=each_seed)
        # By hand, a configuration the run folder already holds is not trained again (delete its JSON to retrain)
        result = finished_result(run) if configuration is None else None
        if result is None:
            result = train_configuration(run)
        print(summary(result))
        results.append(result)

# %% [markdown]
# ## 6. How training went
# The loss should fall and the validation accuracy rise; a curve that is still falling at the end says more
# epochs would help.

# %%
from bertpeft.plots import plot_training_curves

fig = plot_training_curves(results)
# %%
from bertpeft.report import table_of

table = table_of(results)
columns = ["config", "seed", "accuracy", "accuracy_low", "accuracy_high", "f1", "benchmark_accuracy"]
columns += ["trainable_params", "learning_rate", "train_seconds", "peak_memory_mb"]
table[columns].style.format(
    {
        "accuracy": "{:.3f}",
        "accuracy_low": "{:.3f}",
        "accuracy_high": "{:.3f}",
        "f1": "{:.3f}",
        "benchmark_accuracy": "{:.3f}",
        "trainable_params": "{:,}",
        "learning_rate": "{:.2g}",
        "train_seconds": "{:.1f}",
        "peak_memory_mb": "{:,.0f}",
    },
    na_rep="-",
).hide(axis="index")

# %% [markdown]
# ## What we found

# %%
from IPython.display import Markdown

from bertpeft.report import training_takeaways

Markdown(training_takeaways(results))
