"""What bertpeft wrote into a run folder, and the rule that follows from it: bertpeft deletes, replaces and trusts
only what it recorded there.

`<run>/.bertpeft-manifest.json` lists every file and folder the project wrote (a result JSON, a model's weights,
a training's checkpoints, the prepared data, the export, the results table, a figure, an executed notebook), each
file with its size and SHA-256 as written. From it:

- `--force` and every replacement remove only recorded entries (`clear`); a file the user put into the folder,
  or a folder bertpeft did not make, is never deleted: the command stops with one line naming it.
- A recorded file that is gone or no longer what was written (hand-edited, damaged) is named and, where a later
  step relies on it, set aside into `<run>/set-aside/` (never deleted) and made again (`set_aside`).
- Nothing is read, written or deleted through a symbolic link: a link among the run's own files and folders stops
  the command before any work (`check_no_links`), and a recorded path is trusted only where no part of it is a link.

Writes come from one command at a time (the folder's lock, `layout.one_writer`) and the notebook kernels it runs,
one after another, so the manifest is read, changed and written back without a lock of its own.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

from .config import RESULT_SETTINGS, ConfigError, RunConfig
from .device import resolve_precision
from .layout import MANIFEST, RunDir, atomic_write_bytes, atomic_write_json, check_no_links, json_text
from .result import Result, ResultError, read_result

NAME = MANIFEST
FORMAT = 1
SET_ASIDE = "set-aside"


def manifest_path(root: str | Path) -> Path:
    return Path(root).expanduser() / NAME


def _entries(root: Path) -> dict[str, dict]:
    try:
        data = json.loads(manifest_path(root).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # none yet (or unreadable): nothing in the folder counts as bertpeft's
    entries = data.get("entries") if isinstance(data, dict) else None
    return entries if isinstance(entries, dict) else {}


def _save(root: Path, entries: dict[str, dict]) -> None:
    atomic_write_json(manifest_path(root), {"format": FORMAT, "written_by": "bertpeft", "entries": entries})


def start(root: str | Path) -> None:
    """Give the run folder `root` a manifest if it has none: from now on what bertpeft writes there is recorded.
    Files already in the folder stay unrecorded, so they are never deleted or trusted."""
    root = Path(root).expanduser()
    if not manifest_path(root).exists():
        root.mkdir(parents=True, exist_ok=True)
        _save(root, {})


def _inside(root: Path, path: Path) -> str:
    """`path` relative to `root`, refusing a path outside it or one reached through a symbolic link."""
    root, path = Path(root).expanduser().absolute(), Path(path).expanduser().absolute()
    try:
        rel = path.relative_to(root)
    except ValueError:
        raise ConfigError(f"{path} is outside the run folder {root}: bertpeft writes only inside it") from None
    here = root
    for part in rel.parts:
        here = here / part
        if here.is_symlink():
            raise ConfigError(
                f"{here} is a symbolic link: bertpeft reads and writes a run folder only through its own files and "
                f"folders; replace the link with what it points to, or pass another --output"
            )
    return rel.as_posix()


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def record(*paths: str | Path, root: str | Path) -> None:
    """Record `paths`, already written into the run folder `root`, as bertpeft's: a file with its size and hash as it
    is now, a folder as bertpeft's whole (its manifest is started if need be). Writers record before writing
    (`write`, `record_folder`); this is for what exists already."""
    root = Path(root).expanduser()
    start(root)
    entries = _entries(root)
    for path in map(Path, paths):
        rel = _inside(root, path)
        if path.is_dir():
            entries[rel] = {"kind": "folder"}
        elif path.is_file():
            entries[rel] = {"kind": "file", "bytes": path.stat().st_size, "sha256": sha256(path)}
    _save(root, entries)


def write(root: str | Path, path: str | Path, data: bytes | str) -> None:
    """Write `data` to `path` atomically, recorded as bertpeft's before it lands: a kill in between leaves the path
    named with the new bytes' hash, so the old file counts as changed (set aside) or the new one as missing (made
    again), never a file of bertpeft's as a stranger's."""
    root, path = Path(root).expanduser(), Path(path)
    data = data.encode("utf-8") if isinstance(data, str) else data
    start(root)
    entries = _entries(root)
    entries[_inside(root, path)] = {"kind": "file", "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    _save(root, entries)
    atomic_write_bytes(path, data)


def write_json(root: str | Path, path: str | Path, data) -> None:
    """`data` as strict JSON (`layout.json_text`), written and recorded by `write`."""
    write(root, path, json_text(Path(path), data))


def record_folder(root: str | Path, folder: str | Path) -> None:
    """Record `folder` as bertpeft's whole before bertpeft writes into it (it need not exist yet)."""
    root = Path(root).expanduser()
    start(root)
    entries = _entries(root)
    entries[_inside(root, Path(folder))] = {"kind": "folder"}
    _save(root, entries)


def forget(root: str | Path, *paths: str | Path) -> None:
    root = Path(root).expanduser()
    entries = _entries(root)
    rels = [_inside(root, Path(p)) for p in paths]
    kept = {k: v for k, v in entries.items() if not any(k == r or k.startswith(f"{r}/") for r in rels)}
    if kept != entries:
        _save(root, kept)


def _recorded(entries: dict[str, dict], rel: str) -> dict | None:
    """The entry covering `rel`: its own, or that of a recorded folder it lies in."""
    if rel in entries:
        return entries[rel]
    parts = rel.split("/")
    for i in range(len(parts) - 1, 0, -1):
        entry = entries.get("/".join(parts[:i]))
        if entry and entry.get("kind") == "folder":
            return entry
    return None


# What `state` says of a path.
OURS, CHANGED, MISSING, FOREIGN = "ours", "changed", "missing", "foreign"


def state(root: str | Path, path: str | Path) -> str:
    """OURS: recorded and, for a file recorded on its own, the bytes bertpeft wrote; CHANGED: recorded but other
    bytes now (hand-edited or damaged); MISSING: recorded, gone; FOREIGN: not bertpeft's (never recorded, or a
    symbolic link)."""
    root, path = Path(root).expanduser(), Path(path)
    try:
        rel = _inside(root, path)
    except ConfigError:
        return FOREIGN
    entries = _entries(root)
    entry = _recorded(entries, rel)
    if entry is None:
        return FOREIGN
    if not path.exists():
        return MISSING
    if rel in entries and entry.get("kind") == "file":
        if not path.is_file():
            return CHANGED
        if path.stat().st_size != entry.get("bytes") or sha256(path) != entry.get("sha256"):
            return CHANGED
    return OURS


def unowned(root: str | Path, path: str | Path) -> bool:
    """Whether `path` holds something bertpeft did not write: a file or link, or a folder with anything in it,
    that is not recorded. An empty folder holds nothing to lose (the Trainer makes its output folder before bertpeft
    records it)."""
    path = Path(path)
    if not (path.exists() or path.is_symlink()):
        return False
    if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
        return False
    return state(root, path) == FOREIGN


def not_ours(path: Path, root: Path) -> ConfigError:
    return ConfigError(
        f"{path} was not written by bertpeft (it is not in {manifest_path(root)}), and bertpeft deletes or replaces "
        f"only what it wrote: move it out of {root}, or pass another --output"
    )


def clear(root: str | Path, path: str | Path) -> None:
    """Remove `path` (a file or a folder) where bertpeft wrote it; nothing where it does not exist. Anything else
    (a file or folder the user put there, a symbolic link) stops with a ConfigError, deleting nothing."""
    root, path = Path(root).expanduser(), Path(path)
    if not path.exists() and not path.is_symlink():
        forget(root, path)
        return
    if unowned(root, path):
        raise not_ours(path, root)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
    forget(root, path)


def set_aside(root: str | Path, path: str | Path) -> Path:
    """Move `path` (damaged or hand-edited, so no longer trusted) to `<root>/set-aside/<time>/<its place>`, keeping
    it for the user to look at; returns where it went."""
    root, path = Path(root).expanduser(), Path(path)
    rel = _inside(root, path)
    target = root / SET_ASIDE / time.strftime("%Y%m%d-%H%M%S") / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, target)
    forget(root, path)
    return target


def damaged(root: str | Path, under: str) -> list[tuple[str, str]]:
    """Every recorded file under `under` (a folder of the run, e.g. "figures") that is CHANGED or MISSING, as
    (path relative to the run folder, state)."""
    root = Path(root).expanduser()
    found = []
    for rel, entry in sorted(_entries(root).items()):
        if (rel == under or rel.startswith(f"{under}/")) and entry.get("kind") == "file":
            seen = state(root, root / rel)
            if seen in (CHANGED, MISSING):
                found.append((rel, seen))
    return found


def result_differences(config: RunConfig, result: Result, same=None) -> list[str]:
    """The settings that change what a result means (RESULT_SETTINGS) in which `result`, a result JSON, was made
    otherwise than `config` says, each as `name before -> now`. The learning rate is left out where both chose it
    with tune_lr, which sets it per result; the precision is compared as computed (`auto` resolved on this machine
    against the result's `numeric_precision`); `same(name, value)` may accept a value written otherwise (e.g. LoRA
    targets named in full where `config` says auto)."""
    made = result.run_config
    if not isinstance(made, dict):
        return ["settings not recorded"]
    now = json.loads(json.dumps(config.to_dict(), default=str))
    if "precision" in made:
        # What counts is the precision computed in: `auto` is bf16 on one CPU and fp32 on another.
        made = {**made, "precision": result.numeric_precision}
        now = {**now, "precision": resolve_precision(now["precision"])}
    tuned = now.get("tune_lr") is True and made.get("tune_lr") is True
    names = [k for k in RESULT_SETTINGS if k in made and not (tuned and k == "learning_rate")]
    return [f"{k} {made[k]!r} -> {now[k]!r}" for k in names if made[k] != now[k] and not (same and same(k, made[k]))]


def claim_results(
    config: RunConfig,
    force: bool,
    replacing: str | None = None,
    redo: str = "replace them",
    same=None,
    training: tuple[str, ...] = (),
) -> None:
    """Keep the run folder's results to one set of settings, `config`'s, so that no table mixes two, and to files
    bertpeft wrote:
    - a file in results/ that bertpeft did not write stops the command (ConfigError naming it), `force` or not;
    - a result changed since bertpeft wrote it (hand-edited, damaged) is set aside (`set_aside`) with a line saying
      so, and counts as not done;
    - a result made with other settings stops the command (ConfigError naming the files and the settings that
      differ) or, with `force`, is removed with its weights and checkpoints (and the export made from it).
    Everything is checked before anything is removed. `replacing`: the result the command overwrites anyway (not
    compared); `redo`: what --force does, for the message; `same`: see `result_differences`; `training`: the results
    (by name) the command is about to train, whose weights and checkpoints it will replace, so a folder of the user's
    in their place stops it now rather than after the training. A folder without results takes any settings: a run
    that failed before its first result blocks none."""
    layout = RunDir(config)
    root = layout.root
    check_no_links(root)
    for name in training:
        for part in (layout.weights(name), layout.checkpoints_of(name)):
            if unowned(root, part):
                raise not_ours(part, root)
    paths = sorted(layout.results.glob("*.json")) if layout.results.is_dir() else []
    seen = {path: state(root, path) for path in paths}
    foreign = [path for path, said in seen.items() if said == FOREIGN]
    if foreign:
        named = ", ".join(f"results/{p.name}" for p in foreign[:3]) + (" and more" if len(foreign) > 3 else "")
        raise ConfigError(
            f"{root} holds {named}, not written by bertpeft (not in its {NAME}); bertpeft neither reads nor deletes "
            f"such files: move them out of {layout.results}, or pass another --output"
        )
    for path in [p for p, said in seen.items() if said == CHANGED]:
        where = set_aside(root, path)
        print(
            f"results/{path.name} is not what bertpeft wrote (edited or damaged): set aside as "
            f"{where.relative_to(root)}; it counts as not done",
            flush=True,
        )
        paths.remove(path)
    differing: dict[Path, list[str]] = {}
    for path in paths:
        if path.stem == replacing:
            continue
        try:
            differing[path] = result_differences(config, read_result(path), same)
        except ResultError:
            differing[path] = ["written by another version of bertpeft"]
        except OSError:
            differing[path] = ["unreadable"]
    differing = {path: diff for path, diff in differing.items() if diff}
    if not differing:
        return
    if not force:
        groups: dict[str, list[str]] = {}
        for path, diff in differing.items():
            groups.setdefault(", ".join(diff), []).append(f"results/{path.name}")
        said = "; ".join(
            f"{', '.join(files[:3])}{f' and {len(files) - 3} more' if len(files) > 3 else ''}: {diff}"
            for diff, files in groups.items()
        )
        raise ConfigError(
            f"{root} holds results made with other settings ({said}): pass another --output, or --force to {redo}"
        )
    # What --force removes goes with each result: every part must be bertpeft's before the first is removed.
    doomed = {
        path: [
            path,
            layout.weights(path.stem),
            layout.checkpoints_of(path.stem),
            *([layout.export] if path.stem.startswith("lora-") else []),
        ]
        for path in differing
    }
    for parts in doomed.values():
        for part in parts:
            if unowned(root, part):
                raise not_ours(part, root)
    for path, diff in differing.items():
        print(
            f"removing results/{path.name}, its weights and checkpoints: made with other settings ({', '.join(diff)})",
            flush=True,
        )
        for part in doomed[path]:
            clear(root, part)
