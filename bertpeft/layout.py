"""The run folder: every path in it (one `RunDir` knows them all), atomic writes, and reading finished results back
with the facts needed to trust them later (package versions, git state).

    <run>/run_config.json       the run's settings (written by `bertpeft run`, or by the first notebook run by hand)
    <run>/run_status.json       what `bertpeft run` did, step by step
    <run>/prepared/             the tokenized sample (notebook 01)
    <run>/results/<name>.json   one finished configuration and seed (notebook 02)
    <run>/models/<name>/        the weights it trained
    <run>/checkpoints/<name>/   the Trainer's checkpoints while it trains (removed when it finished)
    <run>/export/               the LoRA adapter, the merged model and their verification (notebook 03)
    <run>/results.csv, figures/ the results table and figures (notebook 04)
    <run>/notebooks/            the executed notebooks
    <run>/.bertpeft.lock        held by the one bertpeft command writing into the folder (see `one_writer`)
    <run>/.bertpeft.lock.json   which process holds it (while it does)
"""

from __future__ import annotations

import errno
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from .config import ConfigError, OneLineError, RunConfig, first_line
from .result import Result, read_result

PACKAGES = ("bertpeft", "torch", "transformers", "datasets", "peft", "accelerate", "wandb", "papermill")


@dataclass(frozen=True)
class RunDir:
    """Every path of one run folder."""

    root: Path

    def __init__(self, root: str | Path | RunConfig):
        object.__setattr__(self, "root", root.run_dir if isinstance(root, RunConfig) else Path(root))

    run_config = property(lambda self: self.root / "run_config.json")
    run_status = property(lambda self: self.root / "run_status.json")
    prepared = property(lambda self: self.root / "prepared")
    results = property(lambda self: self.root / "results")
    models = property(lambda self: self.root / "models")
    checkpoints = property(lambda self: self.root / "checkpoints")
    export = property(lambda self: self.root / "export")
    figures = property(lambda self: self.root / "figures")
    results_csv = property(lambda self: self.root / "results.csv")
    notebooks = property(lambda self: self.root / "notebooks")
    lock = property(lambda self: self.root / ".bertpeft.lock")
    lock_holder = property(lambda self: self.root / ".bertpeft.lock.json")

    def result(self, configuration: str, seed: int) -> Path:
        return self.results / f"{result_name(configuration, seed)}.json"

    def weights(self, name: str) -> Path:
        return self.models / name

    def checkpoints_of(self, name: str) -> Path:
        return self.checkpoints / name

    def read_config(self) -> RunConfig | None:
        """The run's saved settings, or None when the folder has none yet."""
        if not self.run_config.exists():
            return None
        return RunConfig.from_dict(json.loads(self.run_config.read_text(encoding="utf-8")))

    def write_config(self, config: RunConfig) -> None:
        atomic_write_json(self.run_config, config.to_dict())


def current_umask() -> int:
    """The process's umask. Reading it means setting it; it is set back at once, and meanwhile it is the strictest
    one, so a file another thread creates in between is private rather than open."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def ordinary_permissions(*paths: Path) -> None:
    """Give files the mode an ordinary write gives (0666 less the umask: 0644 under umask 022). safetensors 0.8
    writes through a temporary file and leaves its weights at 0600, readable by their owner alone (safetensors
    issue 782)."""
    if os.name == "nt":  # Windows: the mode bits mean little
        return
    mode = 0o666 & ~current_umask()
    for path in paths:
        os.chmod(path, mode)


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` so that a reader (or a kill) sees the old file or the new one, never half of one
    (`atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that a reader (or a kill) sees the old file or the new one, never half of one.
    The file gets the permissions an ordinary write would give it (0666 less the umask: 0644 under umask 022), not
    the 0600 of the temporary file it starts as."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if hasattr(os, "fchmod"):  # not on Windows before Python 3.13, where the mode bits mean little
            os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class NonFiniteError(OneLineError):
    """Data bound for a JSON file holds NaN or Infinity, which JSON has no words for; the message says where."""


def non_finite(data: Any, where: str = "") -> list[tuple[str, float]]:
    """Every NaN or infinite float in `data` (nested dicts and lists), as (path such as `loss_curve[3].loss`, value)."""
    if isinstance(data, float):
        return [] if math.isfinite(data) else [(where, data)]
    if isinstance(data, dict):
        return [found for k, v in data.items() for found in non_finite(v, f"{where}.{k}" if where else str(k))]
    if isinstance(data, (list, tuple)):
        return [found for i, v in enumerate(data) for found in non_finite(v, f"{where}[{i}]")]
    return []


# Errors that say the run folder cannot take what is written into it (not that the input is bad).
WRITE_FAULTS = {
    errno.ENOSPC: "No space left on device",
    errno.EFBIG: "File too large",
    errno.EDQUOT: "Disk quota exceeded",
    errno.EROFS: "Read-only file system",
}


def is_write_fault(err: BaseException | str) -> bool:
    """Whether `err` (an exception, or the message a notebook's kernel reported) is a full disk, a file size limit,
    a quota or a read-only file system."""
    if isinstance(err, OSError):
        return err.errno in WRITE_FAULTS
    return any(words.lower() in str(err).lower() for words in WRITE_FAULTS.values())


class WriteFault(OneLineError):
    """The run folder could not take a write (see `is_write_fault`): the command stops with one line, exit 1, and
    what finished before stays; the same command resumes once there is room."""

    @classmethod
    def of(cls, err: BaseException | str, where: str) -> WriteFault:
        return cls(f"could not write {where} ({first_line(err)}): free space, then run the same command to resume")


def atomic_write_json(path: Path, data: Any) -> None:
    """`data` as strict JSON (`json_text`), written atomically."""
    atomic_write_text(path, json_text(path, data))


def json_text(path: Path, data: Any) -> str:
    """`data` as strict JSON text for `path` (no NaN or Infinity, which most JSON readers refuse): a non-finite
    number raises `NonFiniteError` naming it, and nothing is written."""
    try:
        text = json.dumps(data, indent=2, default=str, allow_nan=False)
    except ValueError:
        bad = non_finite(data)
        if not bad:
            raise
        raise NonFiniteError(
            f"{path} was not written: {bad[0][0]} is {bad[0][1]} ({len(bad)} value(s) in all are NaN or infinite, "
            f"which JSON cannot hold)"
        ) from None
    return text + "\n"


def result_name(configuration: str, seed: int) -> str:
    return f"{configuration}-seed{seed}"


def result_path(run_dir: Path, configuration: str, seed: int) -> Path:
    return RunDir(run_dir).result(configuration, seed)


def read_results(run_dir: Path) -> list[Result]:
    """Every finished configuration's result in the run folder, in file-name order."""
    folder = RunDir(run_dir).results
    paths = sorted(folder.glob("*.json"))
    for path in [folder, *paths]:
        if path.is_symlink():  # never read through a link out of the run folder
            raise _link_error(path)
    return [read_result(p) for p in paths]


@dataclass
class TrainedRun:
    """One trained configuration of a run folder: its result JSON and the configuration that produced it."""

    run_dir: Path
    result: Result
    config: RunConfig

    @property
    def num_labels(self) -> int:
        return int(self.result.num_labels)

    @property
    def id2label(self) -> dict[int, str]:
        return self.result.labels_by_id

    @property
    def weights_dir(self) -> Path:
        return RunDir(self.run_dir).weights(self.result.name)


def trained_runs(run: str | Path | RunConfig, configuration: str) -> list[TrainedRun]:
    """Every seed of `configuration` that finished in the run folder, in file-name order."""
    run_dir = RunDir(run).root
    found = []
    for path in sorted(RunDir(run_dir).results.glob(f"{configuration}-seed*.json")):
        if path.is_symlink():
            raise _link_error(path)
        result = read_result(path)
        # the folder may have moved since training: the settings point at where it is now
        settings = {**result.run_config, "configuration": configuration, "seed": result.seed, "output": str(run_dir)}
        found.append(TrainedRun(run_dir, result, RunConfig.from_dict(settings)))
    return found


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    found["python"] = platform.python_version()
    return found


def git_state(where: Path | None = None) -> dict[str, Any]:
    """The commit the code ran from and whether the tree had uncommitted changes (None outside a checkout)."""
    where = where or Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return {"sha": None, "dirty": None}
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return {"sha": sha.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"sha": None, "dirty": None}


def tracked_files_in_the_way(run_dir: str | Path) -> list[str]:
    """Files tracked by git that a run into `run_dir` would overwrite (e.g. `--output .` in a checkout, whose
    notebooks/ and figures/ a run would replace): empty when the folder is not in a git checkout."""
    if not Path(run_dir).expanduser().is_dir():
        return []  # a new folder holds no tracked file yet
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--", *RUN_OUTPUTS],
            cwd=Path(run_dir).expanduser(),
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return listed.stdout.split() if listed.returncode == 0 else []


# The folders and files a run keeps at the top of its folder (a file where one of the folders goes, or the reverse,
# would fail the run part of the way through).
RUN_FOLDERS = ("notebooks", "figures", "results", "models", "export", "prepared", "checkpoints")
RUN_FILES = ("results.csv", "run_config.json", "run_status.json")
# What bertpeft wrote into the folder (see manifest.py).
MANIFEST = ".bertpeft-manifest.json"
# What a run writes into its folder; a folder whose versions of these git tracks would be overwritten.
RUN_OUTPUTS = (*RUN_FOLDERS, "results.csv")


def check_no_links(run_dir: str | Path) -> None:
    """Refuse, before any work, a run folder whose own files or folders (or anything inside those folders) are
    symbolic links: bertpeft would read, write or delete through them outside the folder."""
    root = Path(run_dir).expanduser()
    if not root.is_dir():
        return
    for name in (*RUN_FOLDERS, *RUN_FILES, MANIFEST):
        top = root / name
        if top.is_symlink():
            raise _link_error(top)
        if top.is_dir():
            for folder, dirs, files in os.walk(top, followlinks=False):
                for entry in (*dirs, *files):
                    if Path(folder, entry).is_symlink():
                        raise _link_error(Path(folder, entry))


def _link_error(link: Path) -> ConfigError:
    return ConfigError(
        f"{link} is a symbolic link (to {os.readlink(link)}): a run reads and writes only inside its folder; replace "
        f"the link with what it points to, or pass another --output"
    )


def check_folder_shape(run_dir: str | Path) -> None:
    """Refuse, before any work, a run folder that cannot hold a run: a file where it, a folder above it or one of its
    own folders should be (or a folder where one of its files goes), or a folder this user may not write in."""
    root = Path(run_dir).expanduser()
    nearest = next((p for p in (root, *root.parents) if p.exists()), root)
    if not nearest.is_dir():
        fault = "is a file, not a folder" if nearest == root else f"cannot be a folder: {nearest} is a file"
        raise ConfigError(f"--output {run_dir} {fault}; pass a folder for the run, e.g. runs/NAME")
    for name in RUN_FOLDERS:
        if (root / name).exists() and not (root / name).is_dir():
            raise ConfigError(
                f"{root / name} is a file where a run keeps its {name} folder: move it away, or pass another --output"
            )
    for name in RUN_FILES:
        if (root / name).is_dir():
            raise ConfigError(
                f"{root / name} is a folder where a run keeps its {name} file: move it away, or pass another --output"
            )
    check_no_links(root)
    for folder in (nearest, *(root / name for name in RUN_FOLDERS if (root / name).is_dir())):
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ConfigError(f"{folder} is read-only for this user: pass another --output, or make it writable")


def check_output_folder(run_dir: str | Path) -> None:
    """Refuse, before any work, a run folder that cannot hold a run (`check_folder_shape`) or where the run would
    overwrite files git tracks."""
    check_folder_shape(run_dir)
    in_the_way = tracked_files_in_the_way(run_dir)
    if in_the_way:
        raise ConfigError(
            f"{run_dir} holds files tracked by git that a run would overwrite ({', '.join(in_the_way[:3])}"
            f"{', ...' if len(in_the_way) > 3 else ''}): pass another --output, e.g. runs/NAME"
        )


# Set by the process holding a run folder's lock, for the processes it starts: a command started under it (the
# processes `bertpeft train` starts itself under `accelerate launch --cpu`) writes under the same lock.
WRITER_ENV = "BERTPEFT_WRITER"


@contextmanager
def one_writer(run_dir: str | Path) -> Iterator[bool]:
    """Hold the run folder's lock while the body runs, so that one command at a time writes into it. Another
    command holding it stops this one at once (ConfigError naming the folder and the holder); a lock left by a
    process that died is no obstacle (the operating system releases its lock with it). Yields True when this process
    took the lock, False when it runs under the process that holds it (`WRITER_ENV`)."""
    root = Path(run_dir).expanduser()
    layout = RunDir(root)
    if os.environ.get(WRITER_ENV) == str(root.resolve()):
        yield False
        return
    lock = FileLock(layout.lock)
    made = not root.exists()  # a command that fails before writing anything leaves no folder behind
    try:
        root.mkdir(parents=True, exist_ok=True)
        lock.acquire(timeout=0)
    except Timeout:
        raise ConfigError(
            f"{root} is in use by another bertpeft command ({describe_holder(layout)}): wait for it to end, or pass "
            f"another --output"
        ) from None
    except OSError as err:
        raise ConfigError(f"cannot write into {root} ({err.strerror}): pass another --output") from None
    before = os.environ.get(WRITER_ENV)
    try:
        command = shlex.join(["bertpeft", *sys.argv[1:]])
        holder = {"pid": os.getpid(), "command": command, "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        atomic_write_json(layout.lock_holder, holder)
        os.environ[WRITER_ENV] = str(root.resolve())
        yield True
    finally:
        if before is None:
            os.environ.pop(WRITER_ENV, None)
        else:
            os.environ[WRITER_ENV] = before
        layout.lock_holder.unlink(missing_ok=True)
        lock.release()
        if made and {p.name for p in root.iterdir()} <= {layout.lock.name}:
            layout.lock.unlink(missing_ok=True)
            root.rmdir()


def describe_holder(layout: RunDir) -> str:
    """Which process holds the run folder's lock, in words, from the note it writes beside the lock."""
    unnamed = "a process that has not named itself yet"
    try:
        holder = json.loads(layout.lock_holder.read_text(encoding="utf-8"))
        os.kill(int(holder["pid"]), 0)  # a note left by a process that died names the wrong one
    except PermissionError:
        pass  # alive, another user's
    except (OSError, ValueError, KeyError, TypeError):
        return unnamed
    command = holder.get("command", "?")
    command = command if len(command) <= 160 else command[:157] + "..."
    return f"pid {holder['pid']}: {command}, since {holder.get('since', '?')}"
