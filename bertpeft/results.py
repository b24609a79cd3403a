"""Where a run's results live on disk, written atomically, with the facts needed to trust them later."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Any

RESULTS = "results"
PACKAGES = ("bertpeft", "torch", "transformers", "datasets", "peft", "accelerate", "evaluate", "wandb", "papermill")


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` so that a reader (or a kill) sees the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def result_name(configuration: str, seed: int) -> str:
    return f"{configuration}-seed{seed}"


def result_path(run_dir: Path, configuration: str, seed: int) -> Path:
    return Path(run_dir) / RESULTS / f"{result_name(configuration, seed)}.json"


def read_results(run_dir: Path) -> list[dict[str, Any]]:
    """Every finished configuration's JSON in the run folder, in file-name order."""
    folder = Path(run_dir) / RESULTS
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))]


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


def device_description() -> dict[str, Any]:
    import torch

    if torch.cuda.is_available():
        return {"type": "cuda", "name": torch.cuda.get_device_name(0), "count": torch.cuda.device_count()}
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return {"type": "mps", "name": platform.processor() or "Apple silicon", "count": 1}
    return {
        "type": "cpu",
        "name": platform.processor() or platform.machine(),
        "count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
