"""Training-speed benchmark: the seeds' recipe against ours, the six configurations against full fine-tuning.

The same as `bertpeft bench`, plus `--sections` and `--name`; the work is in `bertpeft/speed/`. For example

    python benchmarks/training_speed.py --profile quick --max-length 512 --data ../shared/data/yelp_polarity

prints the tables and writes benchmarks/results/training_speed-quick-cpu.json.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a checkout without `pip install -e .`

from bertpeft.cli import add_overrides, add_profile  # noqa: E402
from bertpeft.config import ConfigError  # noqa: E402
from bertpeft.speed import DEFAULT_SECTIONS, SECTIONS, run_speed_benchmark  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_profile(parser)
    add_overrides(parser)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repetitions (medians are reported)")
    parser.add_argument("--steps", type=int, default=8, help="timed batches per setup and repetition")
    parser.add_argument(
        "--sections", default=",".join(DEFAULT_SECTIONS), help=f"comma-separated, of {','.join(SECTIONS)}"
    )
    parser.add_argument("--output", default="benchmarks/results", help="folder for the JSON")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall time, or process CPU time for a --threads 1 run on a shared machine",
    )
    parser.add_argument("--name", default=None, help="JSON file name (default training_speed-PROFILE-DEVICE.json)")
    args = parser.parse_args(argv)
    try:
        return run_speed_benchmark(args)
    except ConfigError as err:
        print(f"training_speed: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
