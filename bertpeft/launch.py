"""Several CPU processes under `accelerate launch --cpu --num_processes N`.

On a CPU without mpirun, accelerate's launcher starts one process however many were asked for (accelerate issue
#2741). `bertpeft train` notices that and starts the N processes itself with torch.distributed (gloo); the Trainer
in each then trains data-parallel. GPU launches never come here.
"""

from __future__ import annotations

import os
import subprocess
import sys


def cpu_processes_requested() -> int:
    """How many processes `accelerate launch --cpu --num_processes N` asked for, when it started only this one.

    On a CPU, accelerate starts several processes only through mpirun; without it, its simple launcher starts
    one process and passes no process count (it sets MASTER_ADDR, so we know N > 1 was asked). N is then read
    from the launcher's own command line with accelerate's parser. Returns 1 in every other situation.
    """
    launched_by_accelerate = os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("true", "1")
    distributed = any(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE"))
    if not launched_by_accelerate or distributed or "MASTER_ADDR" not in os.environ:
        return 1
    try:
        import psutil
        from accelerate.commands.launch import launch_command_parser
    except ImportError:
        return 1
    try:
        argv = psutil.Process().parent().cmdline()
        launcher_args, _ = launch_command_parser().parse_known_args(argv[argv.index("launch") + 1 :])
    except (ValueError, OSError, SystemExit, psutil.Error):
        return 1
    if (launcher_args.num_machines or 1) > 1:  # several machines: that launch is the user's (mpirun) to set up
        return 1
    return max(int(launcher_args.num_processes or 1), 1)


def relaunch_on_cpu_processes(n: int, argv: list[str]) -> int:
    """Start `n` CPU processes of `bertpeft argv` with torch.distributed (gloo), as `accelerate launch` was asked to;
    returns their exit status. The Trainer in each sees RANK/WORLD_SIZE and trains data-parallel."""
    print(
        f"accelerate launch --cpu started 1 process for --num_processes {n}: starting {n} with torch.distributed "
        f"(gloo backend)",
        flush=True,
    )
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={n}",
        "-m",
        "bertpeft",
        *argv,
    ]
    return subprocess.call(command)
