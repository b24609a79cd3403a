"""A run folder has one writer at a time (a second command on a folder in use stops at once with one line naming
the process that holds it; a lock left by a killed command is no obstacle), results of one set of settings, and a
one-line refusal, before any work, of a folder that cannot hold a run."""

import json
import os
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


def snapshot(folder: Path) -> dict[str, int]:
    """Every file in `folder` (but the lock and its note) with the time it was last written."""
    return {
        str(p.relative_to(folder)): p.stat().st_mtime_ns
        for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith(".bertpeft.lock")
    }


def one_error_line(done: subprocess.CompletedProcess) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("bertpeft: error: "), lines[0]
    return lines[0]


@pytest.mark.slow
def test_a_second_command_on_a_folder_in_use_stops_at_once_naming_the_holder(tmp_path):
    out = tmp_path / "run"
    args = ["train", "--profile", "smoke", "--config", "head"]
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


@pytest.mark.slow
def test_results_made_with_other_settings_stop_train_and_run_until_force(tmp_path):
    """No table mixes two settings: results made with another n_test stop `train` and `run` with one line naming
    them and the setting, before anything is written; --force removes them (run trains them again)."""
    out = tmp_path / "run"
    head = out / "results" / "head-seed42.json"
    made = run_bertpeft("train", "--profile", "smoke", "--config", "head", "--n-test", "24", "--output", out)
    assert made.returncode == 0, made.stderr[-3000:]
    before = snapshot(out)

    train = run_bertpeft("train", "--profile", "smoke", "--config", "none", "--output", out)
    assert train.returncode == 2, train.stdout + train.stderr
    line = one_error_line(train)
    assert "holds results made with other settings (results/head-seed42.json: n_test 24 -> 48)" in line, line
    assert "--force to remove them" in line
    run = run_bertpeft("run", "--profile", "smoke", "--configs", "head", "--output", out)
    assert run.returncode == 2, run.stdout + run.stderr
    line = one_error_line(run)
    assert "results/head-seed42.json: n_test 24 -> 48" in line and "--force" in line, line
    assert snapshot(out) == before, "the refused commands wrote nothing"

    redone = run_bertpeft("run", "--profile", "smoke", "--configs", "head", "--force", "--output", out, timeout=600)
    assert redone.returncode == 0, redone.stdout[-2000:] + redone.stderr[-2000:]
    assert "removing results/head-seed42.json" in redone.stdout
    result = json.loads(head.read_text())
    assert result["run_config"]["n_test"] == 48 and len(result["test_labels"]) == 48

    # --force removes bertpeft's results made otherwise, and never a file of the user's beside them
    (out / "keep.txt").write_text("mine\n")
    (out / "models" / "mine").mkdir()
    (out / "models" / "mine" / "weights.bin").write_bytes(b"\x01" * 64)
    forced = run_bertpeft(
        "train", "--profile", "smoke", "--config", "none", "--n-test", "24", "--force", "--output", out
    )
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert "removing results/head-seed42.json, its weights and checkpoints" in forced.stdout
    assert sorted(p.name for p in (out / "results").iterdir()) == ["none-seed42.json"]
    assert not (out / "models" / "head-seed42").exists()
    assert (out / "keep.txt").read_text() == "mine\n"
    assert (out / "models" / "mine" / "weights.bin").read_bytes() == b"\x01" * 64


FOLDER_FAULTS = [
    # (command, what stands in the way, where --output points, words of the one line)
    ("train", "run", "run", "is a file, not a folder"),
    ("run", "run", "run", "is a file, not a folder"),
    ("prep", "above", "above/run", "cannot be a folder: {tmp}/above is a file"),
    ("train", "run/results", "run", "{tmp}/run/results is a file where a run keeps its results folder"),
    ("run", "run/notebooks", "run", "{tmp}/run/notebooks is a file where a run keeps its notebooks folder"),
    ("export", "run/export", "run", "{tmp}/run/export is a file where a run keeps its export folder"),
]


@pytest.mark.parametrize(
    ("command", "file", "output", "words"), FOLDER_FAULTS, ids=[f"{c}-{f}" for c, f, _, _ in FOLDER_FAULTS]
)
def test_a_file_in_the_way_of_the_run_folder_is_refused_with_one_line(tmp_path, command, file, output, words):
    (tmp_path / file).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / file).write_text("not a folder")
    before = snapshot(tmp_path)
    args = {"train": ["--profile", "smoke", "--config", "head"], "export": []}.get(command, ["--profile", "smoke"])
    done = run_bertpeft(command, *args, "--output", tmp_path / output)
    assert done.returncode == 2, done.stdout + done.stderr
    line = one_error_line(done)
    assert words.replace("{tmp}", str(tmp_path)) in line, line
    assert "pass" in line  # and the fix
    assert snapshot(tmp_path) == before and not list(tmp_path.rglob(".bertpeft.lock*")), "nothing written"


def without_root_override():
    """In the child before it starts bertpeft: drop root's power to write past a folder's mode (CAP_DAC_OVERRIDE)
    from the capabilities its program gets, so that root meets a read-only folder as any user does."""
    import ctypes

    pr_capbset_drop, cap_dac_override = 24, 1
    if ctypes.CDLL(None, use_errno=True).prctl(pr_capbset_drop, cap_dac_override, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def test_a_read_only_run_folder_is_refused_with_one_line(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "results").mkdir(parents=True)
    as_user = {"preexec_fn": without_root_override} if os.geteuid() == 0 else {}
    try:
        run_dir.chmod(0o555)
        try:
            done = run_bertpeft("train", "--profile", "smoke", "--config", "head", "--output", run_dir, **as_user)
        except subprocess.SubprocessError as err:
            pytest.skip(f"root's write override cannot be dropped here: {err}")
    finally:
        run_dir.chmod(0o755)
    assert done.returncode == 2, done.stdout + done.stderr
    line = one_error_line(done)
    assert f"{run_dir} is read-only for this user" in line, line
    assert sorted(p.name for p in run_dir.iterdir()) == ["results"] and not list((run_dir / "results").iterdir())


@pytest.mark.slow
def test_a_full_disk_stops_the_run_with_one_line_and_a_corrected_command_runs(tmp_path):
    """A write the file system refuses (here a file size limit, as `ulimit -f` sets, standing in for a full disk:
    both fail writes with an OSError) stops the run at once with one line naming the step and the fix, exit 1,
    no traceback and no half-written notebook; the step is recorded as failed. The run made no result, so it does
    not bind the folder: once there is room, a command with another rate runs the series, and its settings replace
    the failed run's."""
    import resource

    from bertpeft.models import resolve_model_source

    resolve_model_source("tiny-random-bert")  # the test cache's tiny BERT, built before the limit
    out = tmp_path / "run"
    args = ["run", "--profile", "smoke", "--configs", "none", "--output", str(out)]

    def small_files():  # smaller than notebook 01's executed copy
        resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))

    full = subprocess.run(
        [sys.executable, "-m", "bertpeft", *args, "--learning-rate", "0.01"],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=small_files,
    )
    assert full.returncode == 1, full.stdout + full.stderr
    lines = full.stderr.strip().splitlines()
    assert len(lines) == 1, full.stderr
    assert lines[0].startswith(f"bertpeft: could not write into {out} in 01_data_prep (")
    assert "File too large" in lines[0] and lines[0].endswith("free space, then run the same command to resume")
    assert not [p for p in (out / "notebooks").iterdir() if p.name.startswith(".")], "a half-written notebook is left"
    status = json.loads((out / "run_status.json").read_text())
    assert status["steps"][-1]["label"] == "01_data_prep" and status["steps"][-1]["status"] == "failed"
    assert json.loads((out / "run_config.json").read_text())["learning_rate"] == 0.01
    assert not list(out.glob("results/*.json"))

    again = run_bertpeft(*args, timeout=600)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert json.loads((out / "run_config.json").read_text())["learning_rate"] is None
    assert json.loads((out / "results" / "none-seed42.json").read_text())["run_config"]["learning_rate"] is None
    assert (out / "results.csv").is_file() and json.loads((out / "run_status.json").read_text())["finished"]
