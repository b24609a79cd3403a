import sys

sys.path.insert(0, "scripts")
from notebook_tools import code, md, write_notebook  # noqa: E402

write_notebook(
    "notebooks/01_data_prep.ipynb",
    "01 · Data preparation: Yelp reviews for BERT",
    """We fine-tune BERT to tell positive from negative Yelp reviews. This notebook loads the reviews (from the
Hugging Face Hub, or from local files with `data = "path/to/folder"`), draws a seeded random sample stratified by
label, looks at the classes and at review lengths, and saves the tokenized sample into the run folder, where the
training notebook (02) picks it up.""",
    """profile = "smoke"  # str: smoke, quick, paper (Experiment A) or seed003 (Experiment B)
data = None  # str | None: Hub dataset id, or a folder with train/test files (CSV, Parquet, JSON Lines)
model = None  # str | None: Hub id, model folder, "minilm" or "tiny-random-bert" (its tokenizer is used)
n_train = None  # int | None: training reviews to sample
n_test = None  # int | None: test reviews to sample
max_length = None  # int | None: tokens kept per review
data_seed = None  # int | None: seed of the random sample
quote_reviews = True  # bool: show review texts (False for notebooks you publish: only lengths are shown)
output = None  # str | None: run folder""",
    [
        code("""from bertpeft import profile_config

config = profile_config(profile, data=data, model=model, n_train=n_train, n_test=n_test,
                        max_length=max_length, data_seed=data_seed, output=output)
print(config.to_json())"""),
        md("""## 1. Load the reviews
The same call loads the Hub's `yelp_polarity` (canonical id `fancyzhx/yelp_polarity`) or a local folder in its
schema (`label,text`). Every check runs here: missing columns, labels that are not 0..K-1, a single class,
files that are not UTF-8; each fails with one line that names the fix."""),
        code("""from bertpeft.data import load_reviews

raw = load_reviews(config.data)
raw"""),
        md("""## 2. A seeded, stratified random sample
Taking the first rows would give whatever order the file has; we sample at random, keeping each class's share,
with a fixed seed so every configuration trains on the same reviews."""),
        code("""from bertpeft.data import class_balance, sample_reviews

sample = sample_reviews(raw, config.n_train, config.n_test, config.data_seed)
class_balance(sample)"""),
        code("""from bertpeft.data import preview_reviews

preview_reviews(sample["train"], 5, quote=quote_reviews)"""),
        md("""## 3. How long are the reviews in tokens?
Padding every review to `max_length` (the write-ups' `padding="max_length"`) makes the model read pad tokens.
Padding each batch to its longest review instead (dynamic padding) reads far fewer: the ratio below is how many
times more tokens padding to `max_length` costs."""),
        code("""from bertpeft.data import padding_waste, token_lengths
from bertpeft.models import load_tokenizer
from bertpeft.plots import plot_token_lengths

tokenizer = load_tokenizer(config.model)
lengths = token_lengths(sample["train"], tokenizer)
plot_token_lengths(lengths, config.max_length)
padding_waste(lengths, config.max_length)"""),
        md("""## 4. Tokenize and save into the run folder
Truncation at `max_length`, no padding here: the training collator pads per batch."""),
        code("""from bertpeft.data import prepare_reviews

prepared, meta = prepare_reviews(config, tokenizer)
print(f"saved {meta['rows']} to {config.run_dir / 'prepared'}; labels {meta['id2label']}")"""),
    ],
)

write_notebook(
    "notebooks/02_train.ipynb",
    "02 · Train one configuration",
    """Experiment A compares six ways to fine-tune the same BERT, from training nothing to training everything:

| configuration | what trains |
|---|---|
| `none` | nothing: the untrained head's accuracy is the floor |
| `head` | the classifier head only |
| `head+1`, `head+2` | the head and the 1 or 2 encoder layers **nearest the head** (the top of the stack) |
| `lora` | LoRA matrices (r=4) on every layer's query and value projections, plus the head |
| `full` | every weight |

"First layers" could mean either end of the encoder. We unfreeze the layers nearest the head: the gradient
then stops at the lowest trainable layer, so the frozen layers below cost only a forward pass. Papermill runs
this notebook once per configuration (and seed).""",
    """profile = "smoke"  # str: smoke, quick, paper or seed003
configuration = "full"  # str: none, head, head+N, lora or full
seed = None  # int | None: training seed (head initialisation, batch order)
model = None  # str | None: Hub id, model folder, "minilm" or "tiny-random-bert"
data = None  # str | None: Hub dataset id or local folder
n_train = None  # int | None: training reviews
n_test = None  # int | None: test reviews
max_length = None  # int | None: tokens kept per review
learning_rate = None  # float | None: None uses the configuration's default rate
epochs = None  # float | None: passes over the training reviews
train_batch_size = None  # int | None: reviews per training step
eval_batch_size = None  # int | None: reviews per evaluation step
eval_steps = None  # int | None: evaluate every this many steps (and once at the end)
logging_steps = None  # int | None: log the loss every this many steps
lora_r = None  # int | None: LoRA rank
lora_alpha = None  # int | None: LoRA scaling numerator (the update is scaled by alpha / r)
lora_dropout = None  # float | None: dropout on the LoRA input
lora_target_modules = None  # list | None: module names LoRA wraps, e.g. ["query", "value"]
padding = None  # str | None: "dynamic" (pad each batch to its longest review) or "max_length"
group_by_length = None  # bool | None: batch reviews of similar length together
precision = None  # str | None: auto, fp32, fp16 or bf16
data_seed = None  # int | None: seed of the random sample (as in 01)
report_to = None  # str | None: "wandb" or "none"
progress = "auto"  # str: auto, bar (tqdm) or lines (plain text, for logs)
output = None  # str | None: run folder""",
    [
        code("""from bertpeft import profile_config

config = profile_config(profile, configuration=configuration, seed=seed, model=model, data=data,
                        n_train=n_train, n_test=n_test, max_length=max_length, data_seed=data_seed,
                        learning_rate=learning_rate, epochs=epochs, train_batch_size=train_batch_size,
                        eval_batch_size=eval_batch_size, eval_steps=eval_steps, logging_steps=logging_steps,
                        lora_r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout,
                        lora_target_modules=lora_target_modules, padding=padding, group_by_length=group_by_length,
                        precision=precision, report_to=report_to, progress=progress, output=output)
print(config.to_json())"""),
        md("""## 1. What trains: parameter counts
The six configurations on this model's architecture, counted without loading any weights. On bert-base-cased
with a 2-label head the counts are 0; 1,538; 7,089,410; 14,177,282; 148,994; 108,311,810.

**Why the write-up printed 150,532 for LoRA.** 148,994 = 147,456 LoRA weights (12 layers x 2 projections x
(768x4 + 4x768)) + 1,538 for the head. PEFT keeps the head trainable by wrapping it in `modules_to_save`, which
holds the original head and a trainable copy; older PEFT releases left the original's `requires_grad` on as
well, so the head was counted twice: 148,994 + 1,538 = 150,532. Only the copy is trained and saved."""),
        code("""import pandas as pd

from bertpeft.models import configuration_table

table = pd.DataFrame(configuration_table(config.model, base=config))
table.style.format({"trainable_params": "{:,}", "total_params": "{:,}", "trainable_percent": "{:.4f}"}).apply(
    lambda row: ["font-weight: bold" if row["config"] == config.configuration else "" for _ in row], axis=1)"""),
        md("""## 2. Train and evaluate
The Trainer evaluates every `eval_steps` but not after the last step, so `train_configuration` evaluates once
more at the end, then re-checks the metrics with an independent inference loop (`benchmark_accuracy`), and
writes one JSON into the run folder's `results/`. An interrupted run resumes from its last checkpoint."""),
        code("""from bertpeft.training import summary, train_configuration

result = train_configuration(config)
print(summary(result))"""),
        md("## 3. Loss curve and metrics"),
        code("""from bertpeft.plots import plot_loss_curve

plot_loss_curve(result);"""),
        code("""keys = ["accuracy", "precision", "recall", "f1", "benchmark_accuracy", "trainable_params", "train_seconds",
        "train_samples_per_second", "peak_memory_mb"]
pd.Series({k: result.get(k) for k in keys}, name=result["name"]).to_frame()"""),
    ],
)
