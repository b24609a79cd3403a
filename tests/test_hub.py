"""The Hub as the libraries see it: the endpoint of HF_ENDPOINT, reached through the user's proxy, decides whether a
command works online, and an unreachable one turns this process offline with one line, the environment untouched."""

import os
import socket
import subprocess
import sys

from hub_server import HubServer

PROBE = (
    "import os; from bertpeft.hub import offline_unless_reachable; "
    "print(offline_unless_reachable(), os.environ.get('HF_HUB_OFFLINE'))"
)


def online_env(tmp_path, **settings) -> dict:
    """This environment without the tests' offline flag or any proxy, with an empty Hub cache, plus `settings`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE") and "proxy" not in k.lower()
    }
    return {**env, "HF_HOME": str(tmp_path / "hf-home"), **settings}


def probe(env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=60)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_mirror_in_hf_endpoint_is_asked_and_keeps_the_command_online(tmp_path):
    with HubServer() as hub:
        done = probe(online_env(tmp_path, HF_ENDPOINT=hub.url))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "None"], done.stdout
    assert hub.requests, "the mirror was never asked"


def test_a_proxy_alone_keeps_the_command_online(tmp_path):
    # An endpoint whose name no resolver knows, reached only through the proxy, as behind a company's proxy.
    with HubServer() as proxy:
        done = probe(online_env(tmp_path, HF_ENDPOINT="http://hub.invalid", HTTP_PROXY=proxy.url))
    assert done.stdout.split() == ["False", "None"], done.stdout + done.stderr
    assert any("hub.invalid" in path for _, path in proxy.requests), proxy.requests


def test_an_unreachable_endpoint_means_offline_for_this_process_said_once_environment_untouched(tmp_path):
    endpoint = f"http://127.0.0.1:{closed_port()}"
    code = PROBE + "; print(offline_unless_reachable())"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=online_env(tmp_path, HF_ENDPOINT=endpoint),
        timeout=60,
    )
    lines = done.stdout.splitlines()
    assert lines[1:] == ["True None", "True"], done.stdout + done.stderr  # offline; HF_HUB_OFFLINE never set
    assert lines[0].startswith(f"The Hugging Face Hub at {endpoint} cannot be reached (")
    assert lines[0].endswith("working offline, cached files only.")


def test_the_users_offline_flag_is_the_answer_and_nothing_is_asked(tmp_path):
    with HubServer() as hub:
        done = probe(online_env(tmp_path, HF_ENDPOINT=hub.url, HF_HUB_OFFLINE="1"))
    assert done.stdout.split() == ["True", "1"], done.stdout + done.stderr
    assert hub.requests == []


def test_a_model_from_an_unreachable_hub_stops_train_with_one_line_within_seconds(tmp_path):
    from conftest import run_bertpeft

    env = online_env(tmp_path, HF_ENDPOINT=f"http://127.0.0.1:{closed_port()}")
    out = tmp_path / "run"
    done = run_bertpeft(
        "train",
        "--profile",
        "smoke",
        "--model",
        "nosuchorg/nosuchmodel",
        "--config",
        "head",
        "--output",
        out,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "nosuchorg/nosuchmodel" in errors[0] and "Offline?" in errors[0], done.stderr
    assert done.seconds < 30
    assert not (out / "results").exists() and not (out / "models").exists()
