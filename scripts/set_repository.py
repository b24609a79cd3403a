"""Point every notebook's Colab badge and install cell at the repository named in pyproject.toml.

    python scripts/set_repository.py            # after changing [project.urls] Repository

rewrites notebooks/*.py and syncs their .ipynb pairs (jupytext). Only GitHub addresses work with Colab's badge.
"""

import re
import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
GITHUB = re.compile(r"https://github\.com/([\w.-]+/[\w.-]+?)(?:\.git)?/?$")
BADGE = re.compile(r"colab\.research\.google\.com/github/[\w.-]+/[\w.-]+/blob/")
INSTALL = re.compile(r"git\+https://github\.com/[\w.-]+/[\w.-]+?(?=[\"'])")


def repository() -> str:
    """`owner/name` from pyproject.toml's [project.urls] Repository."""
    url = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["urls"]["Repository"]
    match = GITHUB.match(url)
    if not match:
        raise SystemExit(f"set_repository: {url!r} is not a GitHub address (https://github.com/OWNER/NAME)")
    return match.group(1)


def main() -> int:
    repo = repository()
    for source in sorted((ROOT / "notebooks").glob("*.py")):
        text = source.read_text(encoding="utf-8")
        new = INSTALL.sub(
            f"git+https://github.com/{repo}", BADGE.sub(f"colab.research.google.com/github/{repo}/blob/", text)
        )
        if new != text:
            source.write_text(new, encoding="utf-8")
            print(f"{source.relative_to(ROOT)}: now {repo}")
    return subprocess.call(
        [sys.executable, "-m", "jupytext", "--sync", "--quiet", *map(str, (ROOT / "notebooks").glob("*.py"))]
    )


if __name__ == "__main__":
    sys.exit(main())
