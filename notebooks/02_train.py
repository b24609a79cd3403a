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
# what it does not need. LoRA is two calls to PEFT: `LoraConfig` says where and how large, `get_peft_model` freezes
# the base model and adds A and B beside each target; `modules_to_save` keeps the task head trainable beside them
# and saves it with the adapter.
#
# Frozen layers can also skip their dropout: in a layer that trains nothing it regularises only indirectly, as noise
# in what the trained layers above see, and it costs time in every step. The Trainer switches the whole model to train
# mode before every step, so `train_configuration` (section 5) adds a hook, `keep_frozen_parts_in_eval(model)`, that
# switches the wholly frozen embeddings and layers back to eval mode before each forward pass: `head` and `head+N`
# then step faster at the same accuracy (docs/findings.md compares both ways over three seeds). `frozen_dropout=True` keeps
# the Trainer's way.

# %%
from peft import LoraConfig, TaskType, get_peft_model

from bertpeft.models import apply_configuration, lora_targets, peft_without_upstream_warning


def prepare_model(model, config):
    """Freeze what does not train in `config.configuration` (or wrap with LoRA); return the model to train."""
    name = config.configuration
    if name == "full":
        return model  # every weight trains: nothing to freeze
    head = task_head(model)  # the new modules on top of the encoder: {"classifier": ...} in BERT
    if name == "lora":
        lora_config = LoraConfig(
            task_type=TaskType.SEQ_CLS,
            r=config.lora_r,  # the rank: 4 here
            lora_alpha=config.lora_alpha,  # the update is scaled by lora_alpha / r
            lora_dropout=config.lora_dropout,
            # ["query", "value"] in BERT (names from print(model)): the setting, or with "auto" the model type's
            target_modules=lora_targets(config, model.config.model_type),
            modules_to_save=list(head),  # the head trains beside the adapter and is saved with it
        )
        with peft_without_upstream_warning():  # peft 0.21 trips a transformers 5 deprecation: theirs, not ours
            return get_peft_model(model, lora_config)
    if name not in ("none", "head") and not name.startswith("head+"):
        # bitfit, lora-rN and the PEFT methods beyond LoRA (ia3, dora, vera, ...): the library builds each
        # method's PEFT config the way LoraConfig is built above (bertpeft.models.peft_config); embeddings+logreg
        # puts a linear layer on the frozen encoder's mean-pooled output, filled by a logistic regression
        # (bertpeft.probe)
        return apply_configuration(model, config)
    model.requires_grad_(False)  # none: nothing trains
    if name.startswith("head"):
        for module in head.values():
            module.requires_grad_(True)
        top = int(name.partition("+")[2] or 0)  # head+2 -> the 2 layers nearest the head
        if top:
            layers = encoder_layers(model)  # model.bert.encoder.layer in BERT
            for layer in layers[len(layers) - top :]:
                layer.requires_grad_(True)
    return model


lora_model = prepare_model(model, config.replace(configuration="lora"))
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

counts = pd.DataFrame(configuration_table(config.model, base=config, prepare_model=prepare_model))
counts[["config", "trainable_params", "total_params", "trainable_percent"]].style.format(
    {"trainable_params": "{:,}", "total_params": "{:,}", "trainable_percent": "{:.4f}"}
).hide(axis="index")

# %% [markdown]
# ## 4. The Trainer
# `TrainingArguments` holds the recipe; `Trainer` runs it. The arguments that depend on where it runs rather than
# on the experiment (the checkpoint folder, fp16 on a GPU, W&B or not, how progress shows) come from
# `runtime.arguments`. `DataCollatorWithPadding` pads each batch to its longest review, not to `max_length`.
# During training the Trainer evaluates the **validation** reviews every `eval_steps` steps; the test reviews are
# read once, after training. (transformers 5 would also evaluate and save a checkpoint after the last step; the
# library cancels both: the final evaluation runs once, explicitly, and a finished run needs no checkpoint.)

# %%
from transformers import DataCollatorWithPadding, Trainer, TrainingArguments


def make_trainer(model, config, data, tokenizer, runtime):
    args = TrainingArguments(
        learning_rate=config.learning_rate_for,  # this configuration's rate (frozen layers tolerate larger ones)
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.train_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation,  # >1 on an Apple GPU: same batch, less memory
        per_device_eval_batch_size=config.eval_batch_size,
        warmup_steps=config.warmup_ratio,  # below 1: that fraction of the steps
        weight_decay=config.weight_decay,
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",  # less padding
        eval_strategy="steps",
        eval_steps=config.eval_steps,
        save_strategy="steps",  # a checkpoint at each evaluation: an interrupted training resumes from it
        save_steps=config.eval_steps,
        save_total_limit=1,
        logging_steps=config.logging_steps,
        seed=config.seed,
        data_seed=config.data_seed,
        **runtime.arguments,
    )
    return Trainer(
        model=model,
        args=args,
        train_dataset=data["train"],
        eval_dataset=data["validation"],
        data_collator=DataCollatorWithPadding(tokenizer, pad_to_multiple_of=runtime.pad_to_multiple_of),
        compute_metrics=runtime.compute_metrics,  # accuracy, precision, recall and F1
        processing_class=tokenizer,
    )


# %% [markdown]
# ## 5. Train and evaluate
# `train_configuration` runs the two functions above for each configuration: it loads a fresh base model, calls
# `prepare_model` and `make_trainer`, then `trainer.train()` and `trainer.predict(test)`, and writes one JSON into
# the run folder's `results/`. Around them it keeps the plumbing: `train_seconds` times the optimizer steps alone
# (evaluations, saves and loading are timed apart), an interrupted training resumes from its last checkpoint, an
# independent inference loop re-checks the metrics (`benchmark_accuracy`), and with `tune_lr` each rate of a small
# grid is tried and the best on the validation reviews kept, before the test reviews are read (once per
# configuration: its other seeds train at the rate its first seed chose).

# %%
from bertpeft.training import Recipe, finished_result, summary, train_configuration

recipe = Recipe(prepare_model, make_trainer)
results = []
for name in configurations:
    for each_seed in seeds:
        run = config.replace(configuration=name, seed=each_seed)
        # By hand, a configuration the run folder already holds is not trained again (delete its JSON to retrain)
        result = finished_result(run) if configuration is None else None
        if result is None:
            result = train_configuration(run, recipe)
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
