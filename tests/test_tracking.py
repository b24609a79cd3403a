"""Weights & Biases: offline runs that hold the metrics, and no prompt or hang when no key is set."""

import json
import os
from pathlib import Path

import pytest
from conftest import run_bertpeft

from bertpeft import tracking
from bertpeft.config import profile_config
from bertpeft.tracking import setup_wandb


def wandb_records(path):
    """The records of a `.wandb` run file: W&B's 7-byte header, then a LevelDB-style log of protobuf `Record`s
    (32 KiB blocks; each chunk has a 7-byte header: CRC, length, type full/first/middle/last)."""
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B"
    pos, block, pending = 7, 32768, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        payload, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        pending = payload if kind in (1, 2) else pending + payload
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


def offline_run(folder):
    """Run name and every logged history value (key -> list of values) of one offline run folder."""
    (run_file,) = folder.glob("*.wandb")
    name, history = None, {}
    for record in wandb_records(run_file):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            name = record.run.display_name
        elif kind == "history":
            for item in record.history.item:
                key = item.key or "/".join(item.nested_key)
                history.setdefault(key, []).append(json.loads(item.value_json))
    return name, history


@pytest.fixture
def restored_environment(monkeypatch):
    """`setup_wandb` sets W&B variables for the Trainer; put the process environment back for the next tests."""
    saved = dict(os.environ)
    monkeypatch.setattr(tracking, "_wandb_dir_set_here", None)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def clean_environment(restored_environment, monkeypatch, tmp_path):
    """No W&B settings and no key anywhere (environment, ~/.netrc, .env)."""
    for key in [k for k in os.environ if k.startswith("WANDB_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_offline_runs_hold_the_metrics(tmp_path, restored_environment):
    import torch

    from bertpeft.training import train_configuration

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    results = {}
    try:
        for name in ("head", "lora"):
            config = profile_config(
                "smoke",
                configuration=name,
                n_train=32,
                n_test=16,
                output=str(tmp_path / "run"),
                report_to="wandb",
                progress="lines",
            )
            results[name] = train_configuration(config)
    finally:
        torch.set_num_threads(threads)
    runs = sorted((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert len(runs) == 2, "one offline run per trained configuration"
    logged = dict(offline_run(folder) for folder in runs)
    assert set(logged) == {"head", "lora"}, "run_name is the configuration"
    for name, history in logged.items():
        assert history["eval/accuracy"][-1] == pytest.approx(results[name].accuracy)
        assert history["eval/f1"][-1] == pytest.approx(results[name].f1)
        assert "train/loss" in history
    import wandb

    assert wandb.run is None, "wandb.finish() after each configuration"


def test_report_to_none_leaves_wandb_alone(clean_environment, capsys):
    assert setup_wandb("none", clean_environment / "run") == []
    assert "WANDB_MODE" not in os.environ and "WANDB_DIR" not in os.environ
    assert capsys.readouterr().out == ""


def test_no_key_and_no_mode_goes_offline_in_one_line(clean_environment, capsys):
    assert setup_wandb("wandb", clean_environment / "run") == ["wandb"]
    assert os.environ["WANDB_MODE"] == "offline"
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and "offline" in lines[0]
    assert os.environ["WANDB_DIR"] == str((clean_environment / "run").resolve())
    assert os.environ["WANDB_PROJECT"] == "bertpeft"


def test_online_without_a_key_goes_offline(clean_environment, capsys, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "online")
    setup_wandb("wandb", clean_environment / "run")
    assert os.environ["WANDB_MODE"] == "offline"
    assert "offline" in capsys.readouterr().out


def test_deprecated_wandb_disabled_turns_tracking_off(clean_environment, capsys, monkeypatch):
    monkeypatch.setenv("WANDB_DISABLED", "true")
    setup_wandb("wandb", clean_environment / "run")
    assert os.environ["WANDB_MODE"] == "disabled"
    assert "WANDB_MODE=disabled" in capsys.readouterr().out


def test_settings_come_from_dot_env_without_overriding(clean_environment, monkeypatch):
    (clean_environment / ".env").write_text("WANDB_PROJECT=from-dotenv\nWANDB_MODE=offline\nWANDB_LOG_MODEL=end\n")
    monkeypatch.setenv("WANDB_LOG_MODEL", "false")
    setup_wandb("wandb", clean_environment / "run")
    assert os.environ["WANDB_PROJECT"] == "from-dotenv"
    assert os.environ["WANDB_LOG_MODEL"] == "false", "a variable already set wins over .env"


def test_each_run_folder_gets_its_own_wandb_dir(clean_environment):
    setup_wandb("wandb", clean_environment / "first")
    setup_wandb("wandb", clean_environment / "second")
    assert os.environ["WANDB_DIR"] == str((clean_environment / "second").resolve())


def test_a_wandb_dir_the_user_set_is_kept(clean_environment, monkeypatch):
    monkeypatch.setenv("WANDB_DIR", str(clean_environment / "mine"))
    setup_wandb("wandb", clean_environment / "run")
    assert os.environ["WANDB_DIR"] == str(clean_environment / "mine")


@pytest.mark.slow
def test_cli_without_key_or_mode_completes_without_prompting(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(HOME=str(tmp_path / "home"), OMP_NUM_THREADS="1")
    output = tmp_path / "run"
    args = "train --profile smoke --config head --report-to wandb --n-train 32 --n-test 16 --progress lines --output"
    done = run_bertpeft(*args.split(), output, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "no WANDB_API_KEY found, logging offline" in done.stdout
    assert (output / "results" / "head-seed42.json").exists()
    (run,) = (output / "wandb").glob("offline-run-*")
    assert offline_run(run)[0] == "head"
