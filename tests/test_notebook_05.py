"""Notebook 05 (the LoRA training-time question) runs headless on the smoke profile, without errors, and its
outputs are clean: no warning, banner or ANSI code, no profiler line, no line per timing repetition."""

import json

import pytest
from conftest import ROOT, notebook_debris


@pytest.mark.slow
def test_lora_training_time_notebook_runs_on_smoke(tmp_path):
    import papermill

    out = tmp_path / "05.ipynb"
    nb = papermill.execute_notebook(
        str(ROOT / "notebooks" / "05_lora_training_time.ipynb"),
        str(out),
        parameters={"profile": "smoke", "output": str(tmp_path / "speed.json")},
        kernel_name="python3",
        cwd=str(ROOT),
        progress_bar=False,
    )
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    assert (tmp_path / "speed.json").exists()
    notebook = json.loads(out.read_text(encoding="utf-8"))
    assert notebook_debris(notebook) == []
    text = json.dumps([c.get("outputs", []) for c in notebook["cells"]])
    assert "USDT" not in text and "profiler_start" not in text, "the profiler's native lines"
    assert "repeat 1/" not in text, "a line per repetition"
