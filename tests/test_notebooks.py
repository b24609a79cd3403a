"""Notebooks 01 and 02 executed by papermill on the smoke profile, as the pipeline and CI run them."""

import json
import os
from pathlib import Path

import nbformat
import pytest

from bertpeft.config import CONFIGURATIONS

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
N_TRAIN, N_TEST = 48, 32  # 3 training steps per configuration: the notebooks' flow, not the model, is under test


def execute(name, output_folder, cwd, **parameters):
    import papermill

    target = output_folder / f"{Path(name).stem}-{parameters.get('configuration', 'data')}.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOKS / name),
        str(target),
        parameters=parameters,
        kernel_name="python3",
        cwd=str(cwd),
        progress_bar=False,
    )
    return nbformat.read(target, as_version=4)


def errors(notebook):
    return [
        output
        for cell in notebook["cells"]
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    """Notebook 01, then notebook 02 once per configuration, all into one run folder."""
    folder = tmp_path_factory.mktemp("notebooks")
    run = folder / "run"
    patch = pytest.MonkeyPatch()
    patch.setenv("OMP_NUM_THREADS", "1")  # the kernels inherit it: a tiny model is fastest on one thread
    patch.delenv("WANDB_DIR", raising=False)
    executed = {}
    try:
        settings = {"n_train": N_TRAIN, "n_test": N_TEST}
        executed["01"] = execute(
            "01_data_prep.ipynb", folder, folder, profile="smoke", settings=settings, output=str(run)
        )
        for name in CONFIGURATIONS:  # 02 takes the run's settings from the folder 01 wrote them into
            executed[name] = execute(
                "02_train.ipynb", folder, folder, configuration=name, progress="lines", output=str(run)
            )
    finally:
        patch.undo()
    return run, executed


@pytest.mark.slow
def test_data_prep_notebook(series):
    run, executed = series
    assert errors(executed["01"]) == []
    meta = json.loads((run / "prepared" / "meta.json").read_text(encoding="utf-8"))
    assert meta["rows"] == {"train": N_TRAIN, "validation": 16, "test": N_TEST}  # the smoke profile's validation
    images = [o for c in executed["01"]["cells"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, "the token-length histogram is drawn"


@pytest.mark.slow
@pytest.mark.parametrize("name", CONFIGURATIONS)
def test_train_notebook(series, name):
    run, executed = series
    notebook = executed[name]
    assert errors(notebook) == []
    injected = [c for c in notebook["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(injected) == 1 and f'configuration = "{name}"' in "".join(injected[0]["source"])
    result = json.loads((run / "results" / f"{name}-seed42.json").read_text(encoding="utf-8"))
    assert result["config"] == name and result["run_config"]["n_train"] == N_TRAIN
    text = "".join(o.get("text", "") for c in notebook["cells"] for o in c.get("outputs", []) if "text" in o)
    if name != "none":
        assert "step 3/3 (100%)" in text, "progress=lines prints plain progress lines"
    assert "\r" not in text, "no tqdm bar redraws in the executed notebook"


@pytest.mark.slow
def test_one_run_folder_holds_all_six(series):
    run, _ = series
    assert sorted(p.stem for p in (run / "results").glob("*.json")) == sorted(f"{n}-seed42" for n in CONFIGURATIONS)
    assert os.path.isdir(run / "prepared")
