"""A run folder has one writer at a time: a second command on a folder in use stops at once with one line naming
the process that holds it, and a lock left by a killed command is no obstacle."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_bertpeft


def start_bertpeft(*args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bertpeft", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def wait_until_it_holds(process: subprocess.Popen, run_dir: Path, timeout: float = 120) -> None:
    """Wait until `process` holds the run folder: its note beside the lock names it."""
    note = run_dir / ".bertpeft.lock.json"
    deadline = time.time() + timeout
    while not (note.exists() and f'"pid": {process.pid}' in note.read_text()):
        assert process.poll() is None, "it ended before holding the folder: " + process.communicate()[1][-2000:]
        assert time.time() < deadline, "it did not take the folder's lock"
        time.sleep(0.05)


def one_error_line(done: subprocess.CompletedProcess) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("bertpeft: error: "), lines[0]
    return lines[0]


@pytest.mark.slow
def test_a_second_command_on_a_folder_in_use_stops_at_once_naming_the_holder(tmp_path):
    out = tmp_path / "run"
    args = ["train", "--profile", "smoke", "--config", "head", "--epochs", "2"]
    first = start_bertpeft(*args, "--output", out)
    try:
        wait_until_it_holds(first, out)
        second = run_bertpeft(*args, "--output", out)
        assert first.poll() is None, "the second command waited for the first to end"
    except BaseException:
        first.kill()
        raise
    assert second.returncode == 2, second.stdout + second.stderr
    line = one_error_line(second)
    assert f"{out} is in use by another bertpeft command (pid {first.pid}: bertpeft train" in line, line
    assert "pass another --output" in line
    stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr[-3000:]
    assert "head (seed 42): accuracy" in stdout
    assert [p.name for p in (out / "results").iterdir()] == ["head-seed42.json"]
    assert not (out / ".bertpeft.lock.json").exists(), "the note goes with the lock"


@pytest.mark.slow
def test_a_lock_left_by_a_killed_command_does_not_block_the_next(tmp_path):
    out = tmp_path / "run"
    first = start_bertpeft("train", "--profile", "smoke", "--config", "head", "--output", out)
    wait_until_it_holds(first, out)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    assert (out / ".bertpeft.lock").exists() and (out / ".bertpeft.lock.json").exists(), "left behind by the kill"

    done = run_bertpeft("prep", "--profile", "smoke", "--output", out)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (out / "prepared" / "meta.json").exists()
    assert not (out / ".bertpeft.lock.json").exists()
