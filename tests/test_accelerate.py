"""`bertpeft train` under `accelerate launch` with two CPU processes: data-parallel, one result, world_size 2."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_two_cpu_processes_write_one_result(tmp_path):
    accelerate = Path(sys.executable).parent / "accelerate"
    output = tmp_path / "run"
    env = {**os.environ, "HOME": str(tmp_path / "home")}  # no ~/.cache/huggingface/accelerate config file
    train = "-m bertpeft train --profile smoke --config full --progress lines --output".split()
    done = subprocess.run(
        [str(accelerate), "launch", "--cpu", "--num_processes", "2", *train, str(output)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=400,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    results = list((output / "results").glob("*.json"))
    assert [p.name for p in results] == ["full-seed42.json"], "one result, written by the main process"
    result = json.loads(results[0].read_text(encoding="utf-8"))
    assert result["world_size"] == 2
    # 96 reviews, batch 16 per process, 2 processes: 3 optimizer steps (6 with one process)
    assert result["train_steps"] == 3
    assert result["benchmark_accuracy"] == result["accuracy"]
    assert all(0.3 < point["loss"] < 1.2 for point in result["loss_curve"]), "losses are means, not sums over ranks"
    assert done.stdout.count("full (seed 42): accuracy") == 1, "one summary line, from the main process"
