"""Issue 7: bad values stop every entry point early, runs resume after a kill, results are deterministic and
never leak a W&B key, and an unreachable Hub is reported in seconds."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import kill_tree, notebook_errors, run_bertpeft

from bertpeft import ConfigError, profile_config
from bertpeft.layout import read_results

FAKE_KEY = "fakekey" + "0123456789abcdef" * 2 + "01"  # 40 characters, the shape of a real W&B key


def write_csv(folder: Path, rows_train, rows_test=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in (("train", rows_train), ("test", rows_test or rows_train)):
        lines = ["label,text"] + [f'{label},"{text}"' for label, text in rows]
        (folder / f"{split}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.fixture
def no_tokenizer_model(tmp_path):
    from bertpeft.fixtures import tiny_bert_config

    folder = tmp_path / "model-without-tokenizer"
    tiny_bert_config(vocab_size=200, max_position_embeddings=512).save_pretrained(folder)
    return folder


BAD_VALUES = [
    # (CLI arguments after `train --output DIR`, words the one-line message must hold)
    (["--profile", "nosuch", "--config", "head"], ["unknown profile", "smoke"]),
    (["--profile", "smoke", "--config", "cfg4"], ["unknown configuration", "head+N"]),
    (["--profile", "smoke", "--config", "head", "--n-train", "0"], ["n_train", "above 0"]),
    (["--profile", "smoke", "--config", "head", "--n-test", "-5"], ["n_test", "above 0"]),
    (["--profile", "smoke", "--config", "head", "--max-length", "4096"], ["max_length", "maximum"]),
    (["--profile", "smoke", "--config", "lora", "--lora-r", "0"], ["lora_r", "above 0"]),
    (["--profile", "smoke", "--config", "lora", "--lora-target-modules", "q_proj"], ["q_proj", "query"]),
    (["--profile", "smoke", "--config", "full", "--learning-rate", "0"], ["learning_rate", "above 0"]),
    (["--profile", "smoke", "--config", "head", "--n-train", "5000"], ["n_train", "160"]),
    (["--profile", "smoke", "--config", "head", "--max-length", "1"], ["max_length 1", "8 or more"]),
]


@pytest.mark.parametrize(("args", "words"), BAD_VALUES, ids=[" ".join(a[2:]) or a[1] for a, _ in BAD_VALUES])
def test_bad_value_exits_2_with_one_line_before_training(tmp_path, capsys, args, words):
    from bertpeft.cli import main

    out = tmp_path / "run"
    assert main(["train", "--output", str(out), *args]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("bertpeft: error: "), errors
    for word in words:
        assert word in errors[0], errors[0]
    assert not (out / "results").exists() and not (out / "checkpoints").exists()


RUN_BAD_INPUT = [
    # (what is wrong, arguments after `run --profile smoke --configs head --output DIR`, words of the one line)
    ("columns", ["--data", "{wrong_columns}"], ["has no text column (looked for", "--text-column NAME"]),
    ("too many rows", ["--n-train", "1000000000000"], ["n_train", "160 or less"]),
    ("max_length", ["--max-length", "100000"], ["max_length=100000", "128 or less"]),
    ("no tokenizer", ["--model", "{no_tokenizer}"], ["no usable tokenizer", "save_pretrained"]),
    ("unreachable model", ["--model", "nosuchorg/nosuchmodel"], ["nosuchorg/nosuchmodel", "Offline?"]),
    ("unreachable data", ["--data", "nosuchorg/nosuchdata"], ["nosuchorg/nosuchdata", "--data PATH"]),
    ("fp16 on a CPU", ["--precision", "fp16"], ["fp16 needs a GPU", "fp32"]),
    ("seeds", ["--seeds", "-1"], ["seeds", "e.g. 1,2,3"]),
    ("a seed twice", ["--seeds", "1,2,1"], ["seeds names 1 more than once", "e.g. 1,2"]),
    (
        "a configuration twice",
        ["--configs", "lora,head,lora"],
        ["configurations names lora more than once", "lora,head"],
    ),
]


@pytest.mark.parametrize(("what", "args", "words"), RUN_BAD_INPUT, ids=[w for w, _, _ in RUN_BAD_INPUT])
def test_bad_input_stops_bertpeft_run_before_any_work(tmp_path, no_tokenizer_model, what, args, words):
    """Through the real command: exit 2 and the whole one-line message (problem and fix), before notebook 01
    starts, and no run folder left to block the corrected command."""
    wrong = write_csv(tmp_path / "wrong-columns", [(i % 2, f"review {i}") for i in range(40)])
    (wrong / "train.csv").write_text((wrong / "train.csv").read_text().replace("label,text", "score,comment", 1))
    paths = {"wrong_columns": wrong, "no_tokenizer": no_tokenizer_model}
    out = tmp_path / "run"
    done = run_bertpeft(
        "run",
        "--profile",
        "smoke",
        "--configs",
        "head",
        "--output",
        out,
        *(a.format(**paths) for a in args),
        timeout=120,
    )
    assert done.returncode == 2, done.stdout[-1000:] + done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bertpeft: error: "), done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    assert "01_data_prep" not in done.stdout
    assert not out.exists()


def test_model_folder_without_tokenizer_is_refused(tmp_path, no_tokenizer_model):
    proc = run_bertpeft(
        "train",
        "--profile",
        "smoke",
        "--config",
        "head",
        "--model",
        str(no_tokenizer_model),
        "--output",
        str(tmp_path / "run"),
        timeout=120,
    )
    assert proc.returncode == 2
    assert "no usable tokenizer" in proc.stderr and str(no_tokenizer_model) in proc.stderr


def test_single_class_dataset_is_refused(tmp_path):
    data = write_csv(tmp_path / "data", [(1, f"great place number {i}") for i in range(20)])
    proc = run_bertpeft(
        "prep",
        "--profile",
        "smoke",
        "--data",
        str(data),
        "--n-train",
        "10",
        "--n-test",
        "5",
        "--output",
        str(tmp_path / "run"),
        timeout=120,
    )
    assert proc.returncode == 2
    assert "single class" in proc.stderr


def test_python_api_validates_like_the_cli():
    with pytest.raises(ConfigError, match="n_train"):
        profile_config("smoke", n_train=0)
    with pytest.raises(ConfigError, match="unknown configuration"):
        profile_config("smoke", configuration="head+0")


@pytest.mark.slow
def test_a_bad_papermill_parameter_stops_the_notebook_before_any_work(tmp_path):
    import papermill

    out = tmp_path / "run"
    with pytest.raises(papermill.PapermillExecutionError) as failure:
        papermill.execute_notebook(
            str(Path(__file__).resolve().parents[1] / "notebooks" / "02_train.ipynb"),
            str(tmp_path / "02.ipynb"),
            parameters={"profile": "smoke", "configuration": "head", "settings": {"n_train": 0}, "output": str(out)},
            kernel_name="python3",
            progress_bar=False,
        )
    assert failure.value.ename == "ConfigError"
    assert "n_train must be a whole number above 0" in failure.value.evalue
    assert len(failure.value.evalue.splitlines()) == 1
    assert not out.exists()  # stopped at the cell that builds the config: nothing prepared, trained or written


@pytest.mark.slow
@pytest.mark.parametrize("parameters", [{"profle": "smoke", "n_train": "notanumber"}])
def test_a_misspelt_papermill_parameter_stops_the_notebook_naming_the_valid_ones(tmp_path, parameters):
    """Papermill only warns of a parameter the notebook does not declare, and the notebook would run with its
    defaults (the quick profile, 2,000 reviews): the notebook's first cell refuses it in one line instead."""
    import papermill

    out = tmp_path / "run"
    with pytest.raises(papermill.PapermillExecutionError) as failure:
        papermill.execute_notebook(
            str(Path(__file__).resolve().parents[1] / "notebooks" / "01_data_prep.ipynb"),
            str(tmp_path / "01.ipynb"),
            parameters={**parameters, "output": str(out)},
            kernel_name="python3",
            progress_bar=False,
            log_output=False,
        )
    assert failure.value.ename == "ConfigError"
    said = "this notebook has no parameter profle, n_train: its parameters are profile, settings, output"
    assert said in failure.value.evalue, failure.value.evalue
    assert len(failure.value.evalue.splitlines()) == 1
    assert not out.exists()


def test_same_profile_and_seed_give_identical_metrics(tmp_path):
    from bertpeft.training import train_configuration

    runs = [
        train_configuration(
            profile_config("smoke", configuration="lora", epochs=3.0, progress="lines", output=str(tmp_path / name))
        )
        for name in ("a", "b")
    ]
    for key in ("accuracy", "precision", "recall", "f1", "loss"):
        assert getattr(runs[0], key) == getattr(runs[1], key), key
    assert runs[0].loss_curve == runs[1].loss_curve
    assert runs[0].test_probabilities == runs[1].test_probabilities


@pytest.mark.slow
def test_wandb_key_never_written_to_the_run_folder(tmp_path):
    """An offline W&B run with a key set: the key is in no file the training writes, its own W&B folder included
    (the whole series with a W&B key and a Hub token set: test_pipeline's smoke series)."""
    out = tmp_path / "run"
    env = {**os.environ, "WANDB_API_KEY": FAKE_KEY, "WANDB_MODE": "offline"}
    proc = run_bertpeft(
        "train", "--profile", "smoke", "--config", "head", "--report-to", "wandb", "--output", str(out), env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert FAKE_KEY not in proc.stdout + proc.stderr
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any("wandb" in p.parts for p in files), "an offline W&B run should be in the run folder"
    leaked = [str(p) for p in files if FAKE_KEY.encode() in p.read_bytes()]
    assert leaked == []


def kill_after_first_checkpoint(args: list[str], checkpoints: Path, timeout: float = 300) -> list[int]:
    """Start `bertpeft ARGS`, kill it (and its children) just after the first checkpoint in `checkpoints` is
    complete, and return the steps of the checkpoints that survived."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bertpeft", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + timeout
        while time.time() < deadline and proc.poll() is None:
            if any((c / "trainer_state.json").exists() for c in checkpoints.glob("checkpoint-*")):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "it finished before it could be killed: make the training longer"
        time.sleep(0.3)
    finally:
        kill_tree(proc.pid)
    saved = [c for c in checkpoints.glob("checkpoint-*") if complete(c)]
    assert saved, "a checkpoint should have survived the kill"
    return sorted(int(c.name.split("-")[1]) for c in saved)


def complete(checkpoint: Path) -> bool:
    try:
        json.loads((checkpoint / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return True


def test_a_checkpoint_cut_off_while_being_written_is_passed_over_and_removed(tmp_path, capsys):
    from bertpeft.training import last_checkpoint

    folder = tmp_path / "checkpoints" / "full-seed42"
    for step, state in ((10, '{"global_step": 10}'), (20, None), (30, '{"global_st')):
        (folder / f"checkpoint-{step}").mkdir(parents=True)
        (folder / f"checkpoint-{step}" / "model.safetensors").write_bytes(b"weights")
        if state is not None:  # the Trainer writes trainer_state.json last
            (folder / f"checkpoint-{step}" / "trainer_state.json").write_text(state)
    assert last_checkpoint(folder) == str(folder / "checkpoint-10")
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint-10"]
    assert "removing checkpoint-20" in capsys.readouterr().out
    assert last_checkpoint(tmp_path / "nothing-here") is None


TIMING_KEYS = ("seconds", "per_second", "memory", "latency", "started", "finished", "resumed_from", "run_config")


def same_apart_from_timings(a: dict, b: dict) -> list[str]:
    """The keys of two result JSONs whose values differ, leaving out timings, memory, dates and paths."""
    return [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k) and not any(w in k for w in TIMING_KEYS)]


@pytest.mark.slow
def test_a_killed_training_resumed_ends_exactly_as_the_uninterrupted_one(tmp_path):
    """LoRA with batches grouped by length (the order the Trainer draws anew each epoch): killed after its first
    checkpoint, then the same command. The resumed training sees the same batches and the same dropout, so its
    losses, metrics, test probabilities and weights equal those of one training that ran through, and
    train_seconds counts the steps before the kill as well."""
    import torch
    from safetensors.torch import load_file

    args = [*"train --profile smoke --config lora --epochs 20 --eval-steps 10 --output".split()]
    whole = run_bertpeft(*args, tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr[-3000:]
    out = tmp_path / "run"
    saved = kill_after_first_checkpoint([*args, str(out)], out / "checkpoints" / "lora-seed42")
    assert not (out / "results" / "lora-seed42.json").exists()

    again = run_bertpeft(*args, out)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming lora from" in again.stdout
    resumed = json.loads((out / "results" / "lora-seed42.json").read_text())
    uninterrupted = json.loads((tmp_path / "whole" / "results" / "lora-seed42.json").read_text())
    assert resumed["resumed_from"].endswith(f"checkpoint-{saved[-1]}") and uninterrupted["resumed_from"] is None
    assert resumed["train_steps"] == 20 * 6 and resumed["timed_steps"] == 20 * 6  # the steps before the kill too
    assert same_apart_from_timings(resumed, uninterrupted) == []
    assert resumed["loss_curve"] == uninterrupted["loss_curve"] and resumed["test_probabilities"]
    weights = [load_file(f / "models" / "lora-seed42" / "trained.safetensors") for f in (out, tmp_path / "whole")]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    for path in (out / "results").glob("*.json"):  # nothing half-written
        json.loads(path.read_text())
    assert [r.name for r in read_results(out)] == ["lora-seed42"]


def as_a_terminal_starts_it() -> None:
    """A shell starts a foreground command with SIGINT at its default and unblocked. A test worker need not be in
    that state (a library it ran may have left SIGINT ignored or blocked, and a child inherits both), which would
    make the command deaf to the Ctrl-C under test."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])


@pytest.mark.slow
def test_ctrl_c_stops_with_one_line_and_exit_130_and_the_same_command_resumes(tmp_path):
    """Ctrl-C during a training notebook, as a terminal sends it: SIGINT to the whole foreground process group
    (bertpeft and papermill; the kernel runs in a session of its own). One line on stderr and no traceback; the
    step it cut is recorded as interrupted, its half-run notebook is kept under a name that says so, and nothing
    counts it done: the same command then runs it and ends with the whole series."""
    out = tmp_path / "run"
    args = [sys.executable, "-m", "bertpeft", "run", "--profile", "smoke", "--configs", "none", "--output"]
    process = subprocess.Popen(
        [*args, str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=as_a_terminal_starts_it,
    )  # fmt: skip
    printed = ""
    while not ("01_data_prep" in printed and printed.endswith("ok\n")):
        line = process.stdout.readline()
        assert line, printed + process.stderr.read()
        printed += line
    time.sleep(3)  # inside the first training notebook
    os.killpg(process.pid, signal.SIGINT)  # start_new_session: its group is its own, as in a terminal
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stdout + stderr
    assert stderr.strip() == "bertpeft: interrupted: run the same command to resume"
    status = json.loads((out / "run_status.json").read_text())
    assert status["steps"][-1]["status"] == "interrupted" and status["steps"][-1]["label"] == "02_train none-seed42"
    assert (out / "notebooks" / "02_train-none-seed42.interrupted.ipynb").is_file()
    assert not (out / "notebooks" / "02_train-none-seed42.ipynb").exists()

    again = run_bertpeft("run", "--profile", "smoke", "--configs", "none", "--output", out, timeout=600)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "02_train none-seed42" in again.stdout and "already done" not in again.stdout
    assert [r.name for r in read_results(out)] == ["none-seed42"]
    assert (out / "results.csv").is_file() and json.loads((out / "run_status.json").read_text())["finished"]
    assert not list((out / "notebooks").glob("*.interrupted.ipynb")), "the interrupted copy outlives its re-run"


@pytest.mark.parametrize("command", ["run", "train", "prep"])
def test_an_output_folder_whose_tracked_files_a_run_would_overwrite_is_refused(tmp_path, command):
    """`--output .` in a checkout would replace its notebooks/ and figures/ with a run's: refused, exit 2, one line,
    nothing written."""
    repo = tmp_path / "checkout"
    (repo / "figures").mkdir(parents=True)
    (repo / "figures" / "loss_curves.png").write_bytes(b"a committed figure")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "figures"], cwd=repo, check=True)
    before = sorted(p.relative_to(repo) for p in repo.rglob("*") if ".git" not in p.parts)
    extra = ["--config", "head"] if command == "train" else []
    done = run_bertpeft(command, "--profile", "smoke", *extra, "--output", ".", cwd=repo)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and "tracked by git" in done.stderr and "figures/loss_curves.png" in done.stderr
    assert sorted(p.relative_to(repo) for p in repo.rglob("*") if ".git" not in p.parts) == before


@pytest.mark.slow
def test_checkpoints_made_with_other_settings_are_never_resumed(tmp_path):
    """A training killed at one learning rate, then started again at another: its checkpoints belong to the other
    training, so they are removed with a line saying why, and the new training starts from step 0."""
    out = tmp_path / "run"
    args = [*"train --profile smoke --config head --epochs 20 --eval-steps 10 --output".split(), str(out)]
    kill_after_first_checkpoint(args, out / "checkpoints" / "head-seed42")

    again = run_bertpeft(*args[:-2], "--learning-rate", "0.5", "--output", out)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming" not in again.stdout
    assert "made with other settings (learning_rate)" in again.stdout
    result = json.loads((out / "results" / "head-seed42.json").read_text())
    assert result["resumed_from"] is None and result["learning_rate"] == 0.5


def test_a_diverged_training_is_reported_and_no_result_written(tmp_path, capsys):
    from bertpeft.cli import main

    out = tmp_path / "run"
    args = ["--n-train", "48", "--n-validation", "0", "--n-test", "8", "--progress", "lines", "--output", str(out)]
    assert main(["train", "--profile", "smoke", "--config", "full", "--learning-rate", "1e30", *args]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("bertpeft: error: full-seed42 diverged: "), errors
    assert (
        " nan" in errors[0] and "no result was written" in errors[0] and "lower learning rate than 1e+30" in errors[0]
    )
    assert not (out / "results").exists() and not (out / "models").exists()
    assert not (out / "checkpoints" / "full-seed42").exists(), "no checkpoint of NaN weights to resume from"


def test_result_json_refuses_nan_and_infinity_naming_where(tmp_path):
    from bertpeft.layout import NonFiniteError, atomic_write_json

    data = {"accuracy": 0.5, "loss_curve": [{"step": 1, "loss": 0.69}, {"step": 2, "loss": float("nan")}]}
    with pytest.raises(NonFiniteError, match=r"loss_curve\[1\]\.loss is nan"):
        atomic_write_json(tmp_path / "r.json", data)
    with pytest.raises(NonFiniteError, match=r"latency is inf"):
        atomic_write_json(tmp_path / "r.json", {"latency": float("inf")})
    assert list(tmp_path.iterdir()) == [], "nothing written, no temporary file left"
    atomic_write_json(tmp_path / "r.json", {"accuracy": 0.5, "latency": None})
    assert json.loads((tmp_path / "r.json").read_text()) == {"accuracy": 0.5, "latency": None}


class Planted:
    """Unpickling this runs code: it writes the file `marker`."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "ran"))


def test_a_checkpoint_holding_a_pickle_that_runs_code_is_set_aside_unloaded(tmp_path, capsys):
    """A checkpoint whose rng_state.pth would write a file when unpickled: it is never resumed from, nothing in it
    runs, and it is set aside (kept, not deleted); the checkpoint before it is resumed from."""
    import numpy as np
    import torch

    from bertpeft.manifest import record
    from bertpeft.training import last_checkpoint

    run, marker = tmp_path / "run", tmp_path / "it-ran.txt"
    folder = run / "checkpoints" / "head-seed42"
    for step, rng in ((10, {"python": (3, (1, 2), None), "numpy": np.random.get_state()}), (20, Planted(marker))):
        (folder / f"checkpoint-{step}").mkdir(parents=True)
        (folder / f"checkpoint-{step}" / "trainer_state.json").write_text(f'{{"global_step": {step}}}')
        torch.save(rng, folder / f"checkpoint-{step}" / "rng_state.pth")
    record(folder, root=run)
    assert last_checkpoint(folder) == str(folder / "checkpoint-10")
    assert not marker.exists(), "the planted code ran"
    said = capsys.readouterr().out
    assert "not resuming from checkpoint-20: rng_state.pth holds more than tensors" in said, said
    assert [p.name for p in folder.iterdir()] == ["checkpoint-10"]
    assert len(list((run / "set-aside").rglob("checkpoint-20/rng_state.pth"))) == 1
    # and the file is hostile indeed: a plain load runs it
    torch.load(next((run / "set-aside").rglob("rng_state.pth")), weights_only=False)
    assert marker.read_text() == "ran"


@pytest.mark.slow
def test_bertpeft_train_never_resumes_from_a_planted_pickle(tmp_path):
    """Through the command: a checkpoint left in the run folder with the training's own settings, whose
    rng_state.pth would write a file when unpickled. `bertpeft train` passes it over (one line), trains from the
    start, and the planted code never runs."""
    import torch

    from bertpeft.config import RESULT_SETTINGS
    from bertpeft.manifest import record
    from bertpeft.training import CHECKPOINT_SETTINGS

    out, marker = tmp_path / "run", tmp_path / "it-ran.txt"
    config = profile_config("smoke", configuration="head", output=str(out))
    folder = out / "checkpoints" / "head-seed42"
    (folder / "checkpoint-3").mkdir(parents=True)
    settings = {k: getattr(config, k) for k in RESULT_SETTINGS} | {"learning_rate": config.learning_rate_for}
    (folder / CHECKPOINT_SETTINGS).write_text(json.dumps(settings, default=str))
    (folder / "checkpoint-3" / "trainer_state.json").write_text('{"global_step": 3}')
    torch.save(Planted(marker), folder / "checkpoint-3" / "rng_state.pth")
    record(folder, root=out)

    done = run_bertpeft("train", "--profile", "smoke", "--config", "head", "--output", out)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "not resuming from checkpoint-3: rng_state.pth holds more than tensors" in done.stdout, done.stdout
    assert "resuming head from" not in done.stdout
    assert not marker.exists(), "the planted code ran"
    assert json.loads((out / "results" / "head-seed42.json").read_text())["resumed_from"] is None


@pytest.mark.slow
def test_a_failing_configuration_does_not_lose_the_others(tmp_path):
    run_dir = tmp_path / "run"
    # head diverges at this rate (its training fails, writing no result); none trains nothing, so it has no rate.
    done = run_bertpeft(
        "run",
        "--profile",
        "smoke",
        "--configs",
        "head,none",
        "--learning-rate",
        "1e30",
        "--output",
        run_dir,
        timeout=600,
    )
    assert done.returncode == 1
    assert "02_train head-seed42" in done.stderr.splitlines()[-1]
    assert "FAILED" in done.stdout
    import pandas as pd

    table = pd.read_csv(run_dir / "results.csv")
    assert table["config"].tolist() == ["none"]
    status = json.loads((run_dir / "run_status.json").read_text())
    assert [f["label"] for f in status["failures"]] == ["02_train head-seed42"]
    assert notebook_errors(run_dir / "notebooks" / "02_train-head-seed42.ipynb")
    assert (run_dir / "figures" / "metrics_per_configuration.png").exists()  # 04 still reports the others
