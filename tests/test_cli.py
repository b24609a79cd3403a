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


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("bertpeft"), stderr
    return lines[0]


def test_an_infinite_epoch_count_stops_train_with_one_line(tmp_path):
    done = run_cli("train", "--profile", "smoke", "--config", "head", "--epochs", "inf", "--output", tmp_path / "r")
    assert done.returncode == 2
    line = one_error_line(done.stderr)
    assert "epochs must be a finite number, e.g. 1 or 0.5; got inf" in line
    assert not (tmp_path / "r").exists()


def test_a_negative_seed_stops_run_with_one_line(tmp_path):
    done = run_cli("run", "--profile", "smoke", "--seeds", "-1", "--output", tmp_path / "r")
    assert done.returncode == 2
    line = one_error_line(done.stderr)
    assert "seeds must be whole numbers from 0 to 4294967295, e.g. 1,2,3; got (-1,)" in line
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["train", "--config", "full", "--learning-rate", "nan"], ["learning_rate", "finite", "e.g. 2e-5"]),
        (["train", "--config", "full", "--learning-rate", "inf"], ["learning_rate", "finite"]),
        (["train", "--config", "head", "--seed", "-1"], ["seed must be a whole number from 0", "e.g. 42"]),
        (["train", "--config", "head", "--data-seed", "-1"], ["data_seed must be a whole number from 0"]),
        (["run", "--seeds", "1,-2"], ["seeds must be whole numbers from 0"]),
        (["run", "--seed", "-7"], ["seed must be a whole number from 0"]),
        (["prep", "--weight-decay", "-1"], ["weight_decay must be 0 or more"]),
    ],
)
def test_bad_numbers_exit_2_with_one_line_naming_the_setting(tmp_path, capsys, args, words):
    from bertpeft.cli import main

    assert main([*args, "--profile", "smoke", "--output", str(tmp_path / "r")]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert all(word in line for word in words), line
    assert not (tmp_path / "r").exists()


def test_a_value_argparse_cannot_read_is_refused_in_one_line(tmp_path, capsys):
    from bertpeft.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(["train", "--profile", "smoke", "--config", "head", "--epochs", "two", "--output", str(tmp_path)])
    assert stopped.value.code == 2
    line = one_error_line(capsys.readouterr().err)
    assert "argument --epochs: invalid float value: 'two'" in line and "--help" in line


def test_run_without_output_uses_the_profiles_folder_so_the_same_command_resumes(monkeypatch):
    """After Ctrl-C bertpeft says "run the same command to resume": without --output, every call must therefore
    pick the same folder (the profile's, runs/<profile>), not a new one per call."""
    from pathlib import Path

    from bertpeft import cli

    folders = []
    monkeypatch.setattr(cli, "run_series", lambda config, plan: folders.append(config.run_dir) or 0)
    assert cli.main(["run", "--profile", "smoke"]) == 0
    assert cli.main(["run", "--profile", "smoke"]) == 0
    assert folders == [Path("runs/smoke"), Path("runs/smoke")]


@pytest.mark.parametrize("name", ["../../outside.json", "sub/speed.json", ".."])
def test_bench_refuses_a_json_name_that_is_a_path(tmp_path, capsys, name):
    from bertpeft.cli import main

    assert main(["bench", "--profile", "smoke", "--output", str(tmp_path / "bench"), "--name", name]) == 2
    assert "is a file name, not a path" in capsys.readouterr().err
    assert not (tmp_path / "bench").exists() and not (tmp_path.parent / "outside.json").exists()
