"""bertpeft deletes, replaces and trusts only what it wrote into a run folder (its manifest): `--force` never touches a
user's files or anything through a symbolic link, and a result, figure or executed notebook that is gone or no longer
what was written is named, set aside (never deleted) and made again."""

from pathlib import Path

import pytest
from conftest import run_bertpeft


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its bytes (links not followed), but the lock a command takes on a folder."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".bertpeft.lock"
    }


def one_error_line(done) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stdout + done.stderr
    assert lines[0].startswith("bertpeft: error: "), lines[0]
    return lines[0]


def users_files(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "package.json").write_text('{"name": "mine"}\n')
    (folder / "notes.json").write_text('{"keep": true}\n')
    return folder


@pytest.mark.parametrize("linked", ["results", "figures", "models", "checkpoints"])
def test_force_through_a_symlinked_run_folder_part_stops_and_touches_nothing_outside(tmp_path, linked):
    """A run folder whose results/ (or figures/, models/, checkpoints/) is a link to another folder: `run --force`
    stops with one line naming the link, exit 2, and the folder it points to is byte for byte as before."""
    sibling = users_files(tmp_path / "sibling")
    out = tmp_path / "run"
    out.mkdir()
    (out / linked).symlink_to(sibling, target_is_directory=True)
    before = snapshot(sibling)

    done = run_bertpeft("run", "--profile", "smoke", "--configs", "head", "--output", out, "--force")
    assert done.returncode == 2, done.stdout + done.stderr
    line = one_error_line(done)
    assert f"{out / linked} is a symbolic link (to {sibling})" in line, line
    assert "pass another --output" in line
    assert snapshot(sibling) == before
    assert sorted(p.name for p in out.iterdir()) == [linked], "nothing was written into the run folder"


def test_a_link_inside_a_run_folder_part_is_refused_too(tmp_path):
    sibling = users_files(tmp_path / "sibling")
    out = tmp_path / "run"
    (out / "models" / "head-seed42").mkdir(parents=True)
    (out / "models" / "head-seed42" / "trained.safetensors").symlink_to(sibling / "package.json")
    before = snapshot(sibling)
    done = run_bertpeft("train", "--profile", "smoke", "--config", "head", "--output", out, "--force")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "trained.safetensors is a symbolic link" in one_error_line(done)
    assert snapshot(sibling) == before


def test_force_in_a_folder_bertpeft_did_not_make_deletes_nothing(tmp_path):
    """A folder of the user's, with no manifest, holding keep.txt, results/mine.json and models/mine/weights.bin:
    `run --force` stops with one line naming results/mine.json, exit 2, before any work, and every file stays."""
    out = tmp_path / "mine"
    (out / "results").mkdir(parents=True)
    (out / "models" / "mine").mkdir(parents=True)
    (out / "keep.txt").write_text("mine\n")
    (out / "results" / "mine.json").write_text('{"accuracy": 1.0}\n')
    (out / "models" / "mine" / "weights.bin").write_bytes(b"\x00" * 64)
    before = snapshot(out)

    done = run_bertpeft("run", "--profile", "smoke", "--configs", "head", "--output", out, "--force")
    assert done.returncode == 2, done.stdout + done.stderr
    line = one_error_line(done)
    assert "results/mine.json, not written by bertpeft" in line and "move them out of" in line, line
    assert snapshot(out) == before, "nothing deleted, nothing written"


def test_a_folder_of_the_users_where_a_training_writes_stops_it_before_it_trains(tmp_path):
    """A folder of the user's where the training would keep its weights: `train` stops with one line before it
    trains, and the folder stays as it was (with --force too)."""
    out = tmp_path / "run"
    (out / "models" / "head-seed42").mkdir(parents=True)
    (out / "models" / "head-seed42" / "notes.txt").write_text("mine\n")
    for force in ((), ("--force",)):
        blocked = run_bertpeft("train", "--profile", "smoke", "--config", "head", "--output", out, *force)
        assert blocked.returncode == 2, blocked.stdout + blocked.stderr
        assert "models/head-seed42 was not written by bertpeft" in one_error_line(blocked)
        assert not (out / "results").exists(), "refused before training"
        assert (out / "models" / "head-seed42" / "notes.txt").read_text() == "mine\n"


def test_the_manifest_records_trusts_and_clears_only_what_it_wrote(tmp_path):
    from bertpeft.config import ConfigError
    from bertpeft.manifest import CHANGED, FOREIGN, MISSING, OURS, clear, record, set_aside, state

    root = tmp_path / "run"
    (root / "results").mkdir(parents=True)
    ours, theirs = root / "results" / "a.json", root / "results" / "b.json"
    ours.write_text("{}")
    theirs.write_text("{}")
    record(ours, root=root)
    (root / "models" / "a").mkdir(parents=True)
    (root / "models" / "a" / "trained.safetensors").write_bytes(b"1")
    record(root / "models" / "a", root=root)
    assert state(root, ours) == OURS and state(root, theirs) == FOREIGN
    assert state(root, root / "models" / "a" / "trained.safetensors") == OURS, "inside a recorded folder"

    with pytest.raises(ConfigError, match="b.json was not written by bertpeft"):
        clear(root, theirs)
    assert theirs.exists()
    clear(root, root / "models" / "a")
    assert not (root / "models" / "a").exists()

    ours.write_text('{"edited": 1}')
    assert state(root, ours) == CHANGED
    kept = set_aside(root, ours)
    assert kept.read_text() == '{"edited": 1}' and kept.is_relative_to(root / "set-aside")
    assert state(root, ours) == FOREIGN, "set aside: no longer recorded"
    record(theirs, root=root)
    theirs.unlink()
    assert state(root, theirs) == MISSING
