"""Print pip constraints that pin every direct dependency of bertpeft (and of its `minilm` and `run` extras; the test tools of `dev` stay current)
at the lowest version pyproject.toml allows, for the lowest-versions test job (`.ci/lowest`):

    python scripts/lowest_constraints.py > lowest.txt && pip install torch==2.13.0 -c lowest.txt -e ".[dev]"

torch is left out: its lowest build for a machine is a separate multi-GB download (the job keeps the torch the
README installs), so the torch bound is the one this job does not check.
"""

import re
import sys
from pathlib import Path

import tomllib  # Python 3.11+: this script runs in a bare venv, before anything is installed

ROOT = Path(__file__).resolve().parents[1]


def lowest(requirements) -> list[str]:
    pins = []
    for text in requirements:
        name = re.match(r"\s*([A-Za-z0-9_.-]+)", text).group(1)
        if name in ("torch", "bertpeft"):
            continue
        floor = re.search(r"(?:>=|==|~=)\s*([0-9][A-Za-z0-9.]*)", text)
        if floor:
            pins.append(f"{name}=={floor.group(1)}")
    return pins


def main() -> int:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    print("\n".join(sorted(set(lowest([*project["dependencies"], *extras["minilm"], *extras["run"]])))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
