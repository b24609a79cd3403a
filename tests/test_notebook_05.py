"""Notebook 05 (the LoRA training-time question) runs headless on the smoke profile, without errors."""

import pytest
from conftest import ROOT


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
