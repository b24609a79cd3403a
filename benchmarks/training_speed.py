"""Training-speed benchmark: `bertpeft bench` (the work is in `bertpeft/speed/`), kept here so that

    python benchmarks/training_speed.py --profile quick --max-length 512 --data ../shared/data/yelp_polarity

works from a checkout: it prints the tables and writes benchmarks/results/training_speed-quick-cpu.json.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a checkout without `pip install -e .`

from bertpeft.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
