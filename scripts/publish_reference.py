"""Publish a finished reference run into the repository: its executed notebooks into `rendered/`, its figures into
`figures/`, and its results (one JSON per configuration and seed, with every test review's label, prediction and
score by position in the test split; results.csv; the run's settings and timings) into `reference/<profile>/`, so
that anyone can recompute every interval and test from the repository. Then the generated sections of the README
and docs/findings.md are written again from them.

    python scripts/publish_reference.py runs/quick-reference

The run must have used `--no-quotes` (a test fails when a committed file quotes a review of the local data).
"""

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bertpeft.layout import RunDir  # noqa: E402

# the executed notebooks a reader is pointed to: data, one training (LoRA, the first seed), export, results
RENDERED = ("01_data_prep.ipynb", "02_train-lora-seed{seed}.ipynb", "03_lora_merge_export.ipynb", "04_results.ipynb")
# Another profile's run (e.g. experiment-b) goes into reference/<profile>/ whole: results, rendered/ and figures/.
RESULTS = ("results.csv", "run_config.json", "run_status.json")


def publish(run_dir: Path) -> Path:
    layout = RunDir(run_dir)
    config = layout.read_config()
    if config is None:
        raise SystemExit(f"publish_reference: {run_dir} holds no run_config.json: give a finished run folder")
    first = min(config.seeds)
    notebooks = [layout.root / "notebooks" / name.format(seed=first) for name in RENDERED]
    for path in notebooks:
        if not path.is_file():
            raise SystemExit(f"publish_reference: {path} is missing: finish the run first (the same bertpeft run)")
        parameters = json.loads(path.read_text(encoding="utf-8"))["metadata"]["papermill"]["parameters"]
        if parameters.get("quote_reviews", False):
            raise SystemExit(f"publish_reference: {path.name} quotes reviews: run the series with --no-quotes")
    target = ROOT / "reference" / config.profile
    main = config.profile == "quick"
    if target.exists():
        shutil.rmtree(target)
    (target / "results").mkdir(parents=True)
    for path in sorted(layout.results.glob("*.json")):
        shutil.copy(path, target / "results" / path.name)
    for name in RESULTS:
        shutil.copy(layout.root / name, target / name)
    # the quick profile's run is the tutorial the README points to; another profile's keeps its own beside its results
    rendered, figures = (ROOT / "rendered", ROOT / "figures") if main else (target / "rendered", target / "figures")
    for folder in (rendered, figures):
        folder.mkdir(parents=True, exist_ok=True)
    for path in notebooks:
        shutil.copy(path, rendered / path.name)
    for path in sorted(layout.figures.glob("*.png")):
        shutil.copy(path, figures / path.name)
    subprocess.run([sys.executable, str(ROOT / "scripts" / "readme_sections.py")], check=True)
    return target


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    target = publish(parser.parse_args().run_dir)
    print(f"published into {target.relative_to(ROOT)}")
    print(json.dumps(sorted(p.name for p in (target / "results").iterdir())))
