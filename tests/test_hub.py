"""The Hub as users meet it, against a stand-in Hub on the loopback (tests/hub_server.py): `HF_ENDPOINT` pointing
at it, an empty cache and no offline flag. Models and data load by Hub id through the real commands, a second run
works from the cache with the server gone, a proxy alone keeps a command online, and each way the Hub can fail
ends in one line naming the repository and the fix, exit 2, within seconds, with nothing written."""

import json
import os
import socket
import subprocess
import sys
import time

import pandas as pd
import pytest
from conftest import SHARED_DATA, run_bertpeft
from hub_server import HubServer

MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"
TINY_ID = "org/tiny-bert"  # the tests' tiny random BERT, served as a Hub model
PROBE = (
    "import os; from bertpeft.hub import reach_repository; "
    "print(reach_repository('org/model'), os.environ.get('HF_HUB_OFFLINE'))"
)


def online_env(home, **settings) -> dict:
    """This environment without the tests' offline flag or any proxy, with the Hub cache in `home`, plus
    `settings`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE") and "proxy" not in k.lower()
    }
    return {**env, "HF_HOME": str(home), **settings}


def probe(env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=60)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def repos(tmp_path_factory):
    """The repositories the stand-in Hub serves: MiniLM's files as the Hub has them, a sample of Yelp polarity
    laid out as the Hub's parquet conversion (made here from the local reviews; never kept), a config-only model."""
    from bertpeft.models import resolve_model_source

    if not (SHARED_DATA / "yelp_polarity" / "train.csv").exists():
        pytest.skip(f"real Yelp data not found at {SHARED_DATA}")
    root = tmp_path_factory.mktemp("hub")
    data = root / "yelp_polarity"
    (data / "plain_text").mkdir(parents=True)
    sizes = {"train": 200, "test": 60}
    for split, n in sizes.items():
        frame = pd.read_csv(SHARED_DATA / "yelp_polarity" / f"{split}.csv", nrows=n)
        frame[["text", "label"]].to_parquet(data / "plain_text" / f"{split}-00000-of-00001.parquet", index=False)
    splits = "".join(f"  - name: {s}\n    num_bytes: 0\n    num_examples: {n}\n" for s, n in sizes.items())
    (data / "README.md").write_text(
        "---\ndataset_info:\n  config_name: plain_text\n  features:\n  - name: text\n    dtype: string\n"
        "  - name: label\n    dtype:\n      class_label:\n        names:\n          '0': '1'\n          '1': '2'\n"
        f"  splits:\n{splits}configs:\n- config_name: plain_text\n  data_files:\n  - split: train\n"
        "    path: plain_text/train-*\n  - split: test\n    path: plain_text/test-*\n  default: true\n---\n"
    )
    small = root / "config-only"
    small.mkdir()
    (small / "config.json").write_text(json.dumps({"model_type": "bert"}))
    return {
        "models": {
            MINILM_ID: resolve_model_source("minilm"),
            "org/model": small,
            TINY_ID: resolve_model_source("tiny-random-bert"),
        },
        "datasets": {"fancyzhx/yelp_polarity": data},
    }


def test_a_mirror_in_hf_endpoint_is_asked_and_keeps_the_command_online(tmp_path, repos):
    with HubServer(models=repos["models"]) as hub:
        done = probe(online_env(tmp_path, HF_ENDPOINT=hub.url))
    assert done.stdout.split() == ["False", "None"], done.stdout + done.stderr
    assert ("HEAD", "/org/model/resolve/main/config.json") in hub.requests


def test_a_proxy_alone_keeps_the_command_online(tmp_path, repos):
    # An endpoint whose name no resolver knows, reached only through the proxy, as behind a company's proxy.
    with HubServer(models=repos["models"]) as proxy:
        done = probe(online_env(tmp_path, HF_ENDPOINT="http://hub.invalid", HTTP_PROXY=proxy.url))
    assert done.stdout.split() == ["False", "None"], done.stdout + done.stderr
    assert any(path.startswith("http://hub.invalid/org/model/") for _, path in proxy.requests), proxy.requests


def test_an_https_hub_is_asked_through_https_proxy(tmp_path):
    # The question goes the way the libraries' requests go: a CONNECT to the user's proxy (which here refuses the
    # tunnel, so the command works offline); never a socket of its own to the endpoint.
    with HubServer() as proxy:
        done = probe(online_env(tmp_path, HF_ENDPOINT="https://hub.invalid", HTTPS_PROXY=proxy.url))
    assert done.stdout.splitlines()[-1] == "True None", done.stdout + done.stderr
    assert ("CONNECT", "hub.invalid:443") in proxy.requests, proxy.requests


def test_an_unreachable_endpoint_means_offline_for_this_process_said_once_environment_untouched(tmp_path):
    endpoint = f"http://127.0.0.1:{closed_port()}"
    code = PROBE + "; print(reach_repository('org/other'))"
    env = online_env(tmp_path, HF_ENDPOINT=endpoint)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    lines = done.stdout.splitlines()
    assert lines[1:] == ["True None", "True"], done.stdout + done.stderr  # offline; HF_HUB_OFFLINE never set
    assert lines[0].startswith(f"The Hugging Face Hub at {endpoint} cannot be reached (")
    assert lines[0].endswith("working offline, cached files only.")


def test_the_users_offline_flag_is_the_answer_and_nothing_is_asked(tmp_path):
    with HubServer() as hub:
        done = probe(online_env(tmp_path, HF_ENDPOINT=hub.url, HF_HUB_OFFLINE="1"))
    assert done.stdout.split() == ["True", "1"], done.stdout + done.stderr
    assert hub.requests == []


@pytest.mark.slow
def test_prep_and_train_by_hub_id_then_the_same_from_the_cache_with_the_hub_gone(tmp_path, repos):
    home = tmp_path / "hf-home"
    sizes = ["--n-train", "48", "--n-validation", "16", "--n-test", "32"]
    args = ["--profile", "smoke", "--model", MINILM_ID, "--data", "yelp_polarity", *sizes]
    with HubServer(**repos) as hub:
        env = online_env(home, HF_ENDPOINT=hub.url)
        prep = run_bertpeft("prep", *args, "--output", tmp_path / "prep", env=env)
        assert prep.returncode == 0, prep.stdout + prep.stderr
        assert "'train': 48" in prep.stdout and "'test': 32" in prep.stdout
        train = run_bertpeft("train", *args, "--config", "head", "--output", tmp_path / "online", env=env)
        assert train.returncode == 0, train.stdout + train.stderr
    asked = {path for _, path in hub.requests}
    assert f"/{MINILM_ID}/resolve/main/config.json" in asked
    assert any(p.startswith("/datasets/fancyzhx/yelp_polarity/resolve/") and p.endswith(".parquet") for p in asked)
    online = json.loads((tmp_path / "online" / "results" / "head-seed42.json").read_text())
    assert online["model"] == MINILM_ID and len(online["test_labels"]) == 32

    # The server is gone: the same command works from the cache, and says once why it is offline.
    cached = run_bertpeft("train", *args, "--config", "head", "--output", tmp_path / "cached", env=env)
    assert cached.returncode == 0, cached.stdout + cached.stderr
    assert "cannot be reached" in cached.stdout and "working offline, cached files only" in cached.stdout
    again = json.loads((tmp_path / "cached" / "results" / "head-seed42.json").read_text())
    assert again["test_labels"] == online["test_labels"] and again["accuracy"] == online["accuracy"]


FAILURES = [
    # (repository, how the server answers, words of the one line)
    ("org/missing", {}, ["no model 'org/missing' on http://127.0.0.1", "check the id", "HF_TOKEN"]),
    ("org/gated", {"gated": ("org/gated",)}, ["model 'org/gated'", "is gated", "accept its conditions", "HF_TOKEN"]),
    ("org/broken", {"failing": ("org/broken",)}, ["answered 500 for model 'org/broken'", "try again later"]),
    ("org/slow", {"slow": ("org/slow",), "slow_seconds": 40}, ["did not answer within 2 s", "'org/slow'"]),
]


@pytest.mark.parametrize(("repo", "answers", "words"), FAILURES, ids=[r.split("/")[1] for r, _, _ in FAILURES])
def test_each_way_the_hub_fails_is_one_line_exit_2_within_seconds_writing_nothing(tmp_path, repo, answers, words):
    out = tmp_path / "run"
    with HubServer(**answers) as hub:
        # huggingface_hub's own timeout for metadata requests (default 10 s), which bertpeft's one question keeps
        env = online_env(tmp_path / "hf-home", HF_ENDPOINT=hub.url, HF_HUB_ETAG_TIMEOUT="2")
        start = time.perf_counter()
        done = run_bertpeft(
            "train", "--profile", "smoke", "--model", repo, "--config", "head", "--output", out, env=env
        )
        seconds = time.perf_counter() - start
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("bertpeft: error: "), done.stderr
    assert all(w in lines[0] for w in words), lines[0]
    assert seconds < 30
    assert not out.exists() or not any(out.iterdir()), "nothing written"


def test_data_missing_from_the_hub_is_one_line_naming_it_and_the_local_fix(tmp_path):
    with HubServer() as hub:
        env = online_env(tmp_path / "hf-home", HF_ENDPOINT=hub.url)
        done = run_bertpeft("prep", "--profile", "smoke", "--data", "org/nodata", "--output", tmp_path / "r", env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "no dataset 'org/nodata'" in lines[0] and "--data PATH" in lines[0], done.stderr
    assert not (tmp_path / "r").exists()


LOAD_BACK = """
import json, sys, torch
from peft import AutoPeftModelForSequenceClassification
from transformers import AutoTokenizer, pipeline
from bertpeft.export import load_adapter_on_base
texts = json.loads(sys.argv[1])
hub = AutoPeftModelForSequenceClassification.from_pretrained(sys.argv[2]).eval()
tokenizer = AutoTokenizer.from_pretrained(sys.argv[2])
local = load_adapter_on_base(sys.argv[3], 2, {0: "LABEL_0", 1: "LABEL_1"})
batch = tokenizer(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
with torch.no_grad():
    a, b = hub(**batch).logits, local(**batch).logits
labels = [p["label"] for p in pipeline("text-classification", model=hub, tokenizer=tokenizer)(texts)]
print(json.dumps({"max_abs_diff": float((a - b).abs().max()), "hub": a.argmax(-1).tolist(), "labels": labels}))
"""


@pytest.mark.slow
def test_an_exported_adapter_pushed_to_the_hub_loads_back_with_the_same_predictions(tmp_path, repos):
    from huggingface_hub import ModelCard

    token = "hf_bertpeft_test_token_5b1f"
    out = tmp_path / "run"
    with HubServer(models=repos["models"]) as hub:
        env = online_env(tmp_path / "hf-home", HF_ENDPOINT=hub.url, HF_TOKEN=token)
        # a base model by Hub id, so that the adapter names it and loads back on it from the Hub
        train = run_bertpeft(
            "train", "--profile", "smoke", "--model", TINY_ID, "--config", "lora", "--output", out, env=env
        )
        assert train.returncode == 0, train.stdout + train.stderr
        done = run_bertpeft("export", "--output", out, "--push-to-hub", "me/tiny-lora", env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "published lora-adapter to me/tiny-lora" in done.stdout
        assert [c["repo"] for c in hub.commits] == ["me/tiny-lora"]
        pushed = set(hub.commits[0]["files"])
        assert {"adapter_config.json", "adapter_model.safetensors", "README.md", "tokenizer.json"} <= pushed
        # the card the Hub validated parses with huggingface_hub's card parser and says what the run was
        card = ModelCard(hub.validated[-1], ignore_metadata_errors=False)
        result = json.loads((out / "results" / "lora-seed42.json").read_text())
        assert card.data.base_model == TINY_ID and card.data.library_name == "peft"
        assert card.data.pipeline_tag == "text-classification"
        accuracy = next(r for r in card.data.eval_results if r.metric_type == "accuracy")
        assert accuracy.metric_value == pytest.approx(result["accuracy"])

        texts = ["The soup was cold and the waiter ignored us.", "Lovely staff, great coffee, will come back!"]
        code = [
            sys.executable,
            "-c",
            LOAD_BACK,
            json.dumps(texts),
            "me/tiny-lora",
            str(out / "export" / "lora-adapter"),
        ]
        back = subprocess.run(
            code, capture_output=True, text=True, env=online_env(tmp_path / "fresh", HF_ENDPOINT=hub.url), timeout=300
        )
    assert back.returncode == 0, back.stderr[-3000:]
    loaded = json.loads(back.stdout.strip().splitlines()[-1])
    assert loaded["max_abs_diff"] < 1e-5
    assert loaded["labels"] == [f"LABEL_{i}" for i in loaded["hub"]]
    files = [p for p in out.rglob("*") if p.is_file()]
    assert token not in done.stdout + done.stderr and not [p for p in files if token.encode() in p.read_bytes()]


def test_publishing_without_a_token_stops_before_the_export_with_one_line(tmp_path):
    env = {
        k: v for k, v in online_env(tmp_path / "hf-home", HF_ENDPOINT="http://127.0.0.1:9").items() if k != "HF_TOKEN"
    }
    out = tmp_path / "run"
    (out / "results").mkdir(parents=True)
    done = run_bertpeft("export", "--output", out, "--push-to-hub", "me/x", env=env)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "bertpeft: error: publishing needs a Hugging Face token with write access: `hf auth login`, or set HF_TOKEN"
    )
    bad = run_bertpeft("export", "--output", out, "--push-to-hub", "not a repo", env=env)
    assert bad.returncode == 2 and "OWNER/NAME" in bad.stderr and not (out / "export").exists()
