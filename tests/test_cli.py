"""The command line: subcommands listed, bad input exits 2 with one line on stderr before any result exists."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_bertpeft

SUBCOMMANDS = ("params", "prep", "train", "run", "bench")


def run_cli(*args, timeout=180, **kwargs):
    return run_bertpeft(*args, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=timeout, **kwargs)


def test_console_script_help_lists_subcommands():
    script = Path(sys.executable).parent / "bertpeft"
    assert script.exists(), "pip install -e . installs the bertpeft console script"
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    for command in SUBCOMMANDS:
        assert command in done.stdout


def test_module_help_lists_subcommands():
    done = run_cli("--help")
    assert done.returncode == 0
    for command in SUBCOMMANDS:
        assert command in done.stdout


@pytest.mark.parametrize("command", ["train", "prep"])
def test_subcommand_help_names_the_overrides(command):
    done = run_cli(command, "--help")
    assert done.returncode == 0
    for flag in ("--profile", "--n-train", "--data", "--model", "--output"):
        assert flag in done.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--config", "cfg4"], "unknown configuration 'cfg4'"),
        (["--config", "head", "--n-train", "0"], "n_train must be a whole number above 0"),
        (["--config", "head", "--data", "{tmp}/no-such-folder"], "no such file or folder"),
        (["--config", "head", "--profile", "nope"], "unknown profile 'nope'"),
    ],
)
def test_bad_train_input_exits_2_with_one_line(tmp_path, args, expected):
    output = tmp_path / "run"
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    done = run_cli("train", "--profile", "smoke", *args, "--output", str(output))
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("bertpeft: error: ") and expected in lines[0]
    assert not (output / "results").exists(), "nothing was trained"
    assert not (output / "models").exists()


def test_bad_prep_input_exits_2(tmp_path):
    done = run_cli("prep", "--profile", "smoke", "--data", str(tmp_path / "missing"), "--output", str(tmp_path / "r"))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "no such file or folder" in done.stderr
    assert not (tmp_path / "r").exists()


def test_prep_writes_the_prepared_data(tmp_path):
    done = run_cli("prep", "--profile", "smoke", "--n-train", "20", "--n-test", "10", "--output", str(tmp_path / "r"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "r" / "prepared" / "meta.json").exists()
    assert "'train': 20" in done.stdout and "'test': 10" in done.stdout


def test_in_process_main_returns_2_for_a_config_error(capsys, tmp_path):
    from bertpeft.cli import main

    assert main(["train", "--profile", "smoke", "--config", "head+0", "--output", str(tmp_path)]) == 2
    assert "unknown configuration 'head+0'" in capsys.readouterr().err
