"""The README's generated sections say what the committed benchmark JSON says: none of their figures is typed by
hand, and a changed JSON makes the check fail until the section is written again."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "readme_sections.py"


def check(readme: Path, results: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, str(SCRIPT), "--check", "--readme", str(readme), "--results", str(results)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_the_readme_sections_match_the_committed_json():
    done = check(ROOT / "README.md", ROOT / "benchmarks" / "results")
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_changed_result_makes_the_check_fail_and_the_rewrite_quotes_it(tmp_path):
    results = tmp_path / "results"
    shutil.copytree(ROOT / "benchmarks" / "results", results)
    readme = tmp_path / "README.md"
    shutil.copy(ROOT / "README.md", readme)
    path = results / "precision_parity-quick-cpu.json"
    parity = json.loads(path.read_text())
    full = next(s for s in parity["summary"] if s["config"] == "full")
    full["accuracy_bf16"] = 0.1234
    path.write_text(json.dumps(parity))
    done = check(readme, results)
    assert done.returncode == 1 and "'precision'" in done.stdout, done.stdout + done.stderr
    rewrite = [sys.executable, str(SCRIPT), "--readme", str(readme), "--results", str(results)]
    subprocess.run(rewrite, check=True, capture_output=True, timeout=120)
    assert "| `full` | 0.9110 | 0.1234 |" in readme.read_text()
    assert check(readme, results).returncode == 0
