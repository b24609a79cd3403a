"""Test settings: no Hub, no W&B servers, a private cache, and paths to the shared real data when present."""

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["WANDB_MODE"] = "offline"
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.pop("WANDB_API_KEY", None)
os.environ["TOKENIZERS_PARALLELISM"] = "false"
# Two workers on two cores: torch's default of one thread per core would put four threads on two cores, where
# each waits on the others (steps of tiny models 10-100x slower). One thread per test process, inherited by the
# commands and notebook kernels it starts; a test that needs more sets it itself.
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def run_bertpeft(*args, env=None, timeout=300, **kwargs) -> subprocess.CompletedProcess:
    """`python -m bertpeft ARGS` as a user runs it: its own process, stdin closed (a prompt would fail, not hang),
    output captured; `.seconds` is its wall time. `env` replaces the environment (default: this one)."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "bertpeft", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        stdin=subprocess.DEVNULL,
        **kwargs,
    )
    done.seconds = time.perf_counter() - start
    return done


def kill_tree(pid: int) -> None:
    """SIGKILL a process and everything it started, as a lost machine or Colab session would: papermill's kernel
    runs in a session of its own, so killing the process group alone would leave it training."""
    import psutil

    parent = psutil.Process(pid)
    for proc in [*parent.children(recursive=True), parent]:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs([parent], timeout=30)


# The files that take longest, longest first (measured with `pytest --durations=0`): pytest-xdist hands each worker
# whole files in collection order, so starting with these lets the two workers finish at about the same time.
SLOW_FILES = (
    "test_pipeline.py",
    "test_reliability.py",
    "test_run_folder.py",
    "test_methods.py",
    "test_training.py",
    "test_own_data.py",
)


def pytest_collection_modifyitems(items):
    slow = {name: rank for rank, name in enumerate(SLOW_FILES)}
    items.sort(key=lambda item: slow.get(item.path.name, len(SLOW_FILES)))  # stable: the rest keep their order


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """The tiny random BERT is built once per session into a temporary cache."""
    os.environ["BERTPEFT_CACHE"] = str(tmp_path_factory.mktemp("bertpeft-cache"))


@pytest.fixture
def shared_data():
    if not (SHARED_DATA / "yelp_polarity" / "train.csv").exists():
        pytest.skip(f"real Yelp data not found at {SHARED_DATA} (the ../shared folder beside the checkout)")
    return SHARED_DATA


@pytest.fixture
def smoke_config(tmp_path):
    from bertpeft import profile_config

    return profile_config("smoke", output=str(tmp_path / "run"), progress="lines")


def a_result(config, **fields):
    """A Result for `config` with made-up metrics (for tests of what reads results, not of training)."""
    import json

    from bertpeft.device import resolve_precision
    from bertpeft.layout import result_name
    from bertpeft.result import Result

    made = {
        "name": result_name(config.configuration, config.seed), "config": config.configuration, "seed": config.seed,
        "profile": config.profile, "model": config.model, "trainable_params": 0, "total_params": 1, "accuracy": 0.5,
        "precision": 0.5, "recall": 0.5, "f1": 0.5, "num_labels": 2, "id2label": {"0": "negative", "1": "positive"},
        "run_config": json.loads(json.dumps(config.to_dict(), default=str)),
        "numeric_precision": resolve_precision(config.precision),  # what `auto` means on this machine
    }  # fmt: skip
    return Result(**{**made, **fields})


def tiny_classifier(folder, num_labels=2, id2label=None):
    """A tiny random BERT with a head and large initial weights, saved with the smoke tokenizer: its logits differ
    clearly between reviews (the smoke profile's near-zero init predicts one class for everything, which would make
    any order or merge look right)."""
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    from bertpeft.fixtures import tiny_bert_config
    from bertpeft.models import TINY_BERT, resolve_model_source

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_source(TINY_BERT))
    labels = {"id2label": id2label, "label2id": {v: k for k, v in id2label.items()}} if id2label else {}
    config = tiny_bert_config(vocab_size=len(tokenizer), initializer_range=0.5, num_labels=num_labels, **labels)
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
DEBRIS = re.compile(r"warning|traceback|deprecat|\[INFO\]|wandb:|USDT|LOAD REPORT", re.IGNORECASE)


def notebook_debris(notebook) -> list[str]:
    """What a reader should not find in an executed notebook: errors, anything written to stderr (warnings,
    banners), ANSI escape codes, and progress bars frozen at their first frame. One line per finding. A listing of
    the library's source (`show_source`: Markdown holding one Python block) is code, not output: its words
    (`peft_without_upstream_warning`) are not debris."""
    found = []
    for index, cell in enumerate(notebook["cells"]):
        for output in cell.get("outputs", []):
            kind = output.get("output_type")
            if kind == "error":
                found.append(f"cell {index}: {output.get('ename')}: {output.get('evalue')}")
                continue
            markdown = "".join((output.get("data") or {}).get("text/markdown", ""))
            if markdown.startswith("```python\n") and markdown.rstrip().endswith("```") and markdown.count("```") == 2:
                continue
            texts = [output.get("text", "")] if kind == "stream" else list((output.get("data") or {}).values())
            text = "".join("".join(t) if isinstance(t, list) else str(t) for t in texts)
            if kind == "stream" and output.get("name") == "stderr":
                found.append(f"cell {index}: stderr: {text.strip()[:200]}")
            elif ANSI.search(text):
                found.append(f"cell {index}: ANSI escape: {text.strip()[:200]!r}")
            elif DEBRIS.search(text) and "image/png" not in (output.get("data") or {}):
                found.append(f"cell {index}: {DEBRIS.search(text).group(0)}: {text.strip()[:200]}")
            elif "application/vnd.jupyter.widget-view+json" in (output.get("data") or {}) and "0%|" in text:
                found.append(f"cell {index}: a progress bar frozen at 0%: {text.strip()[:120]}")
    return found


@contextlib.contextmanager
def torch_threads(n: int):
    """torch on `n` CPU threads inside the block, restored after it (tiny models run fastest on one)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def notebook_errors(path: Path) -> list[dict]:
    """The error outputs of an executed notebook."""
    import json

    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [o for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
