# %% [markdown]
# # 05 · The LoRA training-time question: where a step's time goes
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/bertpeft/bertpeft/blob/main/notebooks/05_lora_training_time.ipynb)
#
# Experiment A's author trained LoRA (r=4, 148,994 trainable weights) and full fine-tuning (108 million) on the
# same reviews and saw LoRA take **almost twice as long on a Colab T4**, and *impossibly long* on an M1, where head-only
# and head+1/head+2 ran in reasonable time. With 1/700 of the weights to train, why?
#
# Because the number of trainable weights does not set the cost of a step. Every configuration runs the whole model
# forward, and LoRA's adapters sit in every layer, so the gradient still has to travel back through all of them. This
# notebook measures where a training step's time (and memory) goes, configuration by configuration, and checks the
# arithmetic.
#
# **How we measure.** A *step* is what the Trainer does with one batch: collate the reviews, move them to the device,
# forward, backward, clip the gradients, take an AdamW step, zero the gradients. The batches come from the Trainer's
# own sampler and collator classes on real reviews. Each comparison builds its setups side by side and times them
# interleaved (A B, B A, ...) for `repeats` repetitions on the same `steps` batches; tables show medians, and ratios
# are paired within a repetition. With the default parameters (a tiny random BERT) the notebook runs in under a minute
# and its numbers only show that the code works; the rendered copy ran profile `quick` (MiniLM-L6, real weights) at
# `max_length` 512 on a 2-core CPU.

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
# Papermill overrides this cell (`papermill --help-notebook` lists them). `None` keeps the profile's value.

# %% tags=["parameters"]
profile = "smoke"  # str: smoke (tiny random BERT, for CI), quick (MiniLM) or paper (bert-base-cased)
model = None  # str | None: Hub id, model folder, "minilm" or "tiny-random-bert" (None: the profile's)
data = None  # str | None: reviews as a CSV/Parquet/JSONL file or folder, or a Hub id (None: the profile's)
max_length = None  # int | None: tokens kept per review (None: the profile's)
n_train = None  # int | None: reviews the epoch's batches are drawn from (None: the profile's)
repeats = 2  # int: interleaved repetitions of each comparison (medians are reported)
steps = 2  # int: timed batches per setup and repetition
threads = 1  # int | None: torch CPU threads; 1 keeps timings steady on a shared machine (None: torch's default)
clock = "wall"  # str: wall for elapsed time, or cpu for process CPU time with one thread on a shared machine
gpu_result = None  # str | None: a benchmark JSON from a GPU for section 11 (None: the checkout's, if any)
precision_result = None  # str | None: benchmarks/precision_parity.py's JSON for section 12 (None: the checkout's)
output = None  # str | None: file to write this notebook's measurements to as JSON (None: none written)
progress = "auto"  # str: auto, bar (one line per section, overwritten while it runs) or lines (no progress output)

# %%
from bertpeft import profile_config
from bertpeft.notebook import quiet_notebook
from bertpeft.speed import open_bench, repeat_progress

quiet_notebook()  # no per-file loading bars: the measurements are the output

config = profile_config(profile, model=model, data=data, max_length=max_length, n_train=n_train)
bench = open_bench(config, steps=steps, threads=threads, clock=clock)
sections = {}
report = repeat_progress(progress)  # how each section shows its repetitions while it runs

# %% [markdown]
# ## 1. The arithmetic
# Per token, a dense layer with N weights costs 2N FLOPs forward. Backward costs 2N more for the gradient with respect
# to its input (needed whenever anything *below* the layer trains) and 2N for the gradient with respect to its weights
# (needed only when the layer's own weights train). So:
#
# | configuration | forward | backward through the layer stack | per token | relative to full |
# |---|---|---|---|---|
# | full fine-tuning | 2N | 2N (inputs) + 2N (weights) | 6N | 1 |
# | LoRA on every layer (frozen base) | 2N | 2N (inputs) + tiny adapter products | ~4N | ~0.67 |
# | head + top k of L layers | 2N | 4N·k/L | 2N + 4N·k/L | (2 + 4k/L)/6 |
# | head only | 2N | nothing below the head | 2N | ~0.33 |
#
# The adapters of layer 1 need the gradient that arrives there from layer 12, so LoRA pays the whole backward pass
# through the activations and skips only the weight gradients and the optimizer update of the frozen weights. Attention's
# score products (QKᵀ and softmax·V) have no weights: their backward costs twice their forward whenever a gradient
# passes, so LoRA's FLOP ratio sits a little above 4/6 and grows with the review length. The table counts every
# matrix product of a real step of this model (torch's FlopCounterMode on a weightless copy).

# %%
from bertpeft.speed import theory_table

theory_table(bench).style.format("{:.3f}")

# %% [markdown]
# ## 2. Forward, backward and optimizer time per configuration
# The six configurations on the same batches (our recipe: dynamic padding, length-grouped batches). `relative` is the
# step time over full fine-tuning's; `memory_mb` is the peak (measured on CUDA; on a CPU counted: weights, gradients
# and AdamW state of the trainable weights, and the activations autograd keeps for backward).

# %%
from bertpeft.speed import run_section, speed_table

sections["configurations"] = run_section(bench, "configurations", repeats, report)
speed_table(sections["configurations"]).round(3)

# %%
from bertpeft.speed import plot_step_phases

fig = plot_step_phases(sections["configurations"])
# %% [markdown]
# Forward costs about the same in every training configuration: all of them run the whole model, in train
# mode (dropout on). Backward is where they differ, and the optimizer step only shows for full fine-tuning. Against
# the arithmetic (the FLOP columns), measured ratios sit higher: the next section shows why.

# %%
theory_table(bench, sections["configurations"]).style.format("{:.3f}", na_rep="-")

# %% [markdown]
# ## 3. Inside a step: matrix products and everything else
# `torch.profiler` on one step: the share of each group of operators (self time). Matrix products follow the FLOP
# arithmetic. The rest (dropout masks, softmax, GELU, layer norm, additions) runs at memory speed. LoRA keeps almost all
# of it: every layer still runs forward in train mode and passes a gradient back, and PEFT adds its own dropout and
# additions. The larger that share on a device, the closer a LoRA step comes to a full one. Mixed precision on a GPU
# speeds up the matrix products far more than the rest.

# %%
from bertpeft.speed import Setup, operator_breakdown

operator_breakdown(bench, [Setup("full", "full"), Setup("lora", "lora"), Setup("head", "head")])

# %% [markdown]
# ## 4. LoRA dropout
# PEFT computes `lora_B(lora_A(dropout(x)))`: with `lora_dropout > 0` every adapted projection (query and value in
# each layer) makes a dropped-out copy of its input and keeps the mask for backward. With 0 it skips both.

# %%
sections["lora_dropout"] = run_section(bench, "lora_dropout", repeats, report)
speed_table(sections["lora_dropout"]).round(3)

# %% [markdown]
# ## 5. LoRA rank
# The adapters' products cost 2·r·(d_in + d_out) FLOPs per token and projection, tiny next to the frozen
# d_in·d_out product beside them, at any rank used in practice.

# %%
sections["lora_rank"] = run_section(bench, "lora_rank", repeats, report)
speed_table(sections["lora_rank"]).round(3)

# %% [markdown]
# ## 6. Batch size
# Samples per second rise with the batch while the device has idle capacity. A 2-core CPU has none, and a larger batch
# also pads more: its longest review is longer.

# %%
sections["batch_size"] = run_section(bench, "batch_size", repeats, report)
speed_table(sections["batch_size"])[["setup", "step_ms", "samples_per_s", "memory_mb"]].round(1)

# %% [markdown]
# ## 7. Padding: the write-ups' recipe against ours
# The write-ups tokenized with `padding="max_length"`: every review becomes `max_length` tokens. Dynamic padding pads
# each batch to its longest review; length grouping (the Trainer's `train_sampling_strategy="group_by_length"`) puts
# reviews of similar length in the same batch, so that longest review is close to the others. All three in fp32.

# %%
sections["padding"] = run_section(bench, "padding", repeats, report)
speed_table(sections["padding"]).round(3)

# %% [markdown]
# ## 8. Which layers to unfreeze: top or bottom
# `head+2` trains the classifier and two encoder layers. Unfrozen at the top (ours), the gradient stops below them;
# unfrozen at the bottom, it has to cross every layer above to reach them, which costs about what LoRA costs. The last
# rows show the head-only step with and without dropout in the frozen layers: the Trainer keeps the whole model in
# train mode, so the frozen layers still draw dropout masks, and on a CPU they take the slower attention path.
# bertpeft runs them in eval mode by default (`frozen_dropout=False`), and the other sections here time that way.

# %%
sections["freezing"] = run_section(bench, "freezing", repeats, report)
speed_table(sections["freezing"]).round(3)

# %% [markdown]
# Dropout is paid alike by full fine-tuning and LoRA: every layer draws its masks in the forward pass and
# applies them again in the backward pass, whether or not its weights train. The same comparison with every dropout rate
# set to 0 (a diagnostic only: it changes what is trained, so it is never a default) shows how much of the distance
# between LoRA's measured ratio and its FLOP ratio that accounts for.

# %%
sections["dropout"] = run_section(bench, "dropout", repeats, report)
speed_table(sections["dropout"]).round(3)

# %% [markdown]
# ## 9. Inference: merged or not
# Unmerged, each adapted projection runs two extra small products and an addition; `merge_and_unload()` folds
# B·A into the base weights, so the merged model costs exactly the base model.

# %%
sections["inference"] = run_section(bench, "inference", repeats, report)
speed_table(sections["inference"])[["setup", "step_ms", "samples_per_s", "x_base model"]].round(3)

# %% [markdown]
# ## 10. Memory, and what it says about the M1
# Activations kept for backward dominate training memory at 512 tokens. LoRA keeps nearly all of them (every layer
# must pass a gradient down), so it saves only the gradients and AdamW state of the frozen weights. Counted for
# bert-base-cased, the write-ups' model, at the write-ups' batch of 16 reviews padded to 512 tokens, in fp32:

# %%
from bertpeft.speed import BERT_BASE_CASED_SHAPE, memory_table

memory_table(BERT_BASE_CASED_SHAPE, config, batch_size=16, width=512)

# %% [markdown]
# ## 11. On a GPU
# The same benchmark on CUDA (fp16 autocast for ours), read from its JSON when the checkout has one
# (`python benchmarks/training_speed.py --profile paper ...` on a GPU machine writes it).

# %%
from bertpeft.speed import load_speed_result

gpu = load_speed_result(gpu_result)
speed_table(gpu).round(3) if gpu else print("No GPU benchmark JSON found: the GPU figures were not measured.")

# %% [markdown]
# ## 12. Precision: bf16 where the CPU has it
# `precision="auto"` (the default) trains in bf16 autocast on a CPU that multiplies bf16 matrices natively (Intel's
# AMX or AVX-512 BF16: recent Xeons, AMD Zen 4 and later) and in fp32 on other CPUs, where bf16 autocast is far
# slower than fp32 (on an AVX2-only CPU, 12x: `benchmarks/results/training_speed-quick-cpu.json`). On CUDA it is
# bf16 where the GPU computes it natively (Ampere and later) and fp16 otherwise (a T4). A run prints what it chose
# and why, each result records it (`numeric_precision`), and a run folder does not take results made in another
# precision. `--precision fp32` (or `bf16`) overrides it.
#
# Does bf16 change what a configuration learns? `benchmarks/precision_parity.py` trained each of the six
# configurations in fp32 and in bf16 autocast with the same seeds, data and rates, and scored both on the same test
# reviews. The interval of each difference resamples the seeds and then the reviews (a two-level bootstrap); the
# p-values are corrected for the six comparisons together (Holm).

# %%
from bertpeft.speed import load_precision_parity, precision_parity_table, precision_parity_words

parity = load_precision_parity(precision_result)
no_parity = "No precision comparison JSON found: run benchmarks/precision_parity.py on a CPU with native bf16."
precision_parity_table(parity).round(4) if parity else print(no_parity)

# %%
if parity:
    print("\n".join(precision_parity_words(parity)))

# %% [markdown]
# ## 13. Conclusion
# **A LoRA step is cheaper than a full fine-tuning step, not dearer.** On a 2-core CPU with MiniLM-L6 at 512 tokens (the
# rendered run, and `benchmarks/results/training_speed-quick-cpu.json`) it costs about 0.8-0.9x a full step while its
# matrix products are 0.68x. Section 2 shows where the difference goes. LoRA's backward pass costs what the arithmetic
# says, about two thirds of full's, because only the weight gradients are skipped. Its forward pass costs a little
# *more* than full's: the adapters' products, PEFT's dropout copy of the input, and the additions. On this CPU the forward
# pass, inflated by the dropout masks drawn over every attention matrix (section 8: the head-only step drops from about
# 0.4x to about 0.25x of a full step without them), is close to half of a step instead of a third, and LoRA cannot
# shorten it. Section 8's last table takes dropout out of both: LoRA then comes to 0.74x of a full step in
# `benchmarks/results/training_speed-quick-cpu-dropout.json` (this run's own figure is in the verdict below), close to
# its FLOP ratio. Dropout, paid alike by every configuration that runs the encoder in train mode, is most of the gap;
# the adapters themselves cost little.
#
# **The T4 observation.** Nothing in a LoRA step makes it twice as long as a full step: per step it is cheaper on every
# setup we measured, and its FLOPs are 0.7x of full's at any length. The write-up's "almost twice as long" must come from
# something that differed between its two runs and that a per-step measurement cannot see: the number of steps or
# epochs, evaluation time counted in, a different precision, or a shared Colab GPU. No GPU figures are committed yet:
# section 11 shows a GPU's figures when a benchmark JSON from one is present; its `seeds_precision` section times full
# and LoRA in fp32 and fp16 under the write-ups' padding.
#
# **The M1 observation fits memory, not arithmetic.** Full fine-tuning and LoRA both keep the activations of all 12
# layers for backward: 11 GB (LoRA) to 13.5 GB (full) in all for bert-base at 16 reviews x 512 tokens in fp32 (section
# 10), more than an 8 or 16 GB M1 can hold beside everything else, so both would swap. Head-only keeps nothing and head+1/+2 keep one or two
# layers' worth, and those are the runs the write-up says finished in reasonable time. This is counted, not measured:
# we had no M1.
#
# **What makes training fast:** our recipe's dynamic, length-grouped padding (section 7: the write-ups' padding to 512
# costs several times the tokens and more in time, since attention grows with the square of the length). Unfreeze the
# top layers rather than the bottom ones (section 8), and merge the adapter before serving (section 9). `lora_dropout=0`
# saves little (section 4). The sentences below are worded from this run's own numbers:

# %%
from bertpeft.speed import verdict

print("\n".join(verdict(sections)))

# %%
from bertpeft.speed import save_sections

if output:
    print(f"wrote {save_sections(output, bench, sections)}")
