"""`bertpeft run`: the numbered notebooks executed with papermill, in order, into one run folder.

01 prepares the data once, 02 trains each configuration and seed, 03 exports the LoRA model (when the run has
one), 04 makes the results table, the figures and the exploration. The run's settings go into the folder's
`run_config.json`, which every notebook reads (papermill passes only what differs per notebook: the folder, the
configuration and seed), so no setting is ever dropped on the way. A configuration already done in the folder
(its result JSON exists) is skipped unless `force`; a failing one is recorded and the others go on. Every result in
the folder must have been made with the run's settings, so that its table never mixes two (`claim_results`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import ADAPTER, ConfigError, RunConfig
from .data import check_data, check_max_length, prepared_is_current
from .device import precision_words, resolve_precision
from .export import ExportError, read_verification
from .layout import (
    RunDir,
    WriteFault,
    atomic_write_json,
    check_output_folder,
    is_write_fault,
    one_writer,
    result_name,
)
from .manifest import CHANGED, FOREIGN, MISSING, claim_results, damaged, set_aside, state, write
from .methods import compared_here
from .models import check_virtual_tokens, configuration_table, load_tokenizer, model_positions, same_lora_targets
from .report import write_results_csv
from .training import trainings_needed

NOTEBOOKS_ENV = "BERTPEFT_NOTEBOOKS"
PREP, TRAIN, EXPORT, RESULTS = "01_data_prep", "02_train", "03_lora_merge_export", "04_results"
METHODS_NOTEBOOK = "06_beyond_lora"  # runs when the configurations include methods beyond the six


@dataclass(frozen=True)
class SeriesPlan:
    """What one `bertpeft run` executes, apart from the run's settings: which configurations and seeds, whether to
    redo what the folder already holds, and whether executed notebooks may quote reviews."""

    configurations: tuple[str, ...]
    seeds: tuple[int, ...]
    force: bool = False
    quote_reviews: bool = True

    @classmethod
    def of(cls, config: RunConfig, force: bool = False, quote_reviews: bool = True) -> SeriesPlan:
        return cls(tuple(config.configurations), tuple(config.seeds), force, quote_reviews)


def notebooks_dir() -> Path:
    """The source notebooks: `$BERTPEFT_NOTEBOOKS`, else the copy installed with the package, else `notebooks/`
    beside the package (an editable install of a checkout)."""
    here = Path(__file__).resolve().parent
    candidates = [Path(os.environ[NOTEBOOKS_ENV])] if os.environ.get(NOTEBOOKS_ENV) else [here / "notebooks"]
    candidates.append(here.parent / "notebooks")
    for folder in candidates:
        if (folder / f"{PREP}.ipynb").exists():
            return folder
    raise ConfigError(
        f"the notebooks are not in {candidates[0]}: reinstall bertpeft (pip install .) or set {NOTEBOOKS_ENV}="
        f"path/to/notebooks"
    )


def declared_parameters(notebook: Path) -> set[str]:
    import papermill

    return set(papermill.inspect_notebook(str(notebook)))


def check_series(config: RunConfig) -> None:
    """Everything that can be checked before the first notebook starts, so that bad input stops the run before any
    work with one line (and exit 2), writing nothing: raises ConfigError (or DataError)."""
    check_output_folder(config.run_dir)
    resolve_precision(config.precision)  # fp16 without a GPU
    check_data(config)  # columns, labels, enough rows; a Hub id that cannot be reached
    # The tokenizer must load and max_length fit the model's positions.
    check_max_length(config.max_length, load_tokenizer(config.model), model_positions(config.model))
    # Counting parameters on a weightless skeleton checks head+N against the encoder depth and LoRA's targets.
    configuration_table(config.model, configurations=config.configurations, base=config)
    for name in config.configurations:  # prefix and prompt tokens beside max_length ones must fit the positions
        check_virtual_tokens(config.replace(configuration=name))


@dataclass
class Step:
    notebook: str
    label: str
    parameters: dict[str, Any]
    output: Path
    status: str = "pending"  # ok, failed, skipped
    seconds: float = 0.0
    note: str = ""
    error: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "notebook": self.notebook,
            "label": self.label,
            "status": self.status,
            "seconds": round(self.seconds, 2),
            "note": self.note,
            "executed": str(self.output),
            "parameters": self.parameters,
            **({"error": self.error} if self.error else {}),
        }


class SharedKernel:
    """One Python kernel for the training notebooks of a series, executed one after another. Each notebook starts as
    in a new kernel (`notebook.start_afresh`: empty namespace, cells numbered from 1), but torch, transformers,
    datasets and peft stay imported: seconds per training notebook, most of what a notebook costs beside its
    training. A notebook that fails or is interrupted takes the kernel with it, so the next starts a new one and never
    sees what a failure left behind."""

    RESET = '__import__("bertpeft.notebook").notebook.start_afresh()'

    def __init__(self) -> None:
        self.km = None  # jupyter_client's AsyncKernelManager; nbclient starts its kernel on first use
        self.used = False

    def __enter__(self) -> SharedKernel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def manager(self):
        """The kernel manager for the next notebook: the last one's kernel, made afresh, or a new one."""
        if self.km is not None and self.used and not self._reset():
            self.close()
        if self.km is None:
            from jupyter_client.manager import AsyncKernelManager

            self.km, self.used = AsyncKernelManager(kernel_name="python3"), False
        self.used = True
        return self.km

    def _reset(self) -> bool:
        from jupyter_client import BlockingKernelClient

        if not self.km.has_kernel:
            return False
        client = BlockingKernelClient()
        client.load_connection_info(self.km.get_connection_info())
        client.start_channels()
        try:
            reply = client.execute_interactive(
                self.RESET, silent=True, store_history=False, timeout=60, output_hook=lambda msg: None
            )
        except (TimeoutError, RuntimeError):
            return False
        finally:
            client.stop_channels()
        return reply["content"]["status"] == "ok"

    def close(self) -> None:
        """Shut the kernel down (a kill: nothing in it is worth waiting for)."""
        from jupyter_core.utils import run_sync

        km, self.km, self.used = self.km, None, False
        if km is not None and km.has_kernel:
            with contextlib.suppress(Exception):
                run_sync(km.shutdown_kernel)(now=True)


class Series:
    """Executes the steps of one run, prints one line per notebook and keeps `run_status.json` current."""

    def __init__(self, config: RunConfig, folder: Path, force: bool):
        self.config, self.folder, self.force = config, folder, force
        self.run_dir = config.run_dir
        self.layout = RunDir(config)
        self.steps: list[Step] = []
        self.started = time.time()
        self.earlier = earlier_invocations(self.layout.run_status)
        # A notebook still named `.X.running.ipynb` was cut off by a kill (this command holds the folder): it is
        # kept as one cut off by Ctrl-C is, and its step counts as not done.
        for tmp in self.layout.notebooks.glob(".*.running.ipynb") if self.layout.notebooks.is_dir() else []:
            keep_interrupted(tmp, tmp.with_name(tmp.name[1 : -len(".running.ipynb")] + ".ipynb"))

    def step(self, notebook: str, label: str, parameters: dict[str, Any], suffix: str = "") -> Step:
        step = Step(notebook, label, parameters, self.layout.notebooks / f"{notebook}{suffix}.ipynb")
        self.steps.append(step)
        return step

    def interrupted(self, step: Step) -> bool:
        """Whether the step's last attempt was cut off (by Ctrl-C or a kill; `keep_interrupted`): then it is not
        done, even where a result written just before the kill looks finished, and runs again."""
        return step.output.with_name(f"{step.output.stem}.interrupted.ipynb").exists()

    def intact(self, step: Step, *files: Path, under: str | None = None) -> bool:
        """Whether the step's executed notebook and `files` it made (with every recorded file `under` a folder of the
        run, e.g. its figures) are as bertpeft wrote them. Each one edited or damaged is set aside (never deleted)
        and each one gone is named, in one line, and the step runs again; a notebook never executed is not intact,
        silently."""
        root = self.layout.root
        paths = [step.output, *files, *(root / rel for rel, _ in (damaged(root, under) if under else []))]
        problems = []
        for path in dict.fromkeys(paths):
            said, rel = state(root, path), path.relative_to(root)
            if said == CHANGED:
                problems.append(
                    f"{rel} is not what bertpeft wrote (set aside as {set_aside(root, path).relative_to(root)})"
                )
            elif said == MISSING:
                problems.append(f"{rel} is missing")
            elif said == FOREIGN and (path == step.output or not path.exists()):
                return False  # never made here (or not by bertpeft): not done, nothing to say
            elif said == FOREIGN:
                problems.append(f"{rel} was not written by bertpeft")
        if problems:
            print(f"{step.label:<34} runs again: {'; '.join(problems)}", flush=True)
        return not problems

    def skip(self, step: Step, note: str) -> None:
        step.status, step.note = "skipped", note
        print(f"{step.label:<34} skipped: {note}", flush=True)
        self.save_status()

    def execute(self, step: Step, kernel: SharedKernel | None = None) -> bool:
        """Execute `step`'s notebook (in `kernel` when given, else in a kernel of its own)."""
        import papermill

        step.output.parent.mkdir(parents=True, exist_ok=True)
        if step.output.exists() and state(self.layout.root, step.output) == FOREIGN:
            set_aside(self.layout.root, step.output)  # a notebook bertpeft did not write is kept, not overwritten
        tmp = step.output.with_name(f".{step.output.stem}.running.ipynb")
        print(f"{step.label:<34} ", end="", flush=True)
        start = time.perf_counter()
        try:
            papermill.execute_notebook(
                str(self.folder / f"{step.notebook}.ipynb"),
                str(tmp),
                parameters=step.parameters,
                cwd=os.getcwd(),
                progress_bar=False,
                kernel_name="python3",
                # CRITICAL: a Ctrl-C that reaches the kernel between two messages makes ipykernel log an ERROR with
                # a traceback on the terminal; the step's outcome is bertpeft's to report, in one line
                extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
                **({"km": kernel.manager()} if kernel else {}),
            )
            step.status = "ok"
        except papermill.PapermillExecutionError as err:
            step.status = "failed"
            step.error = {"ename": err.ename, "evalue": str(err.evalue)[:500]}
        except Exception as err:  # noqa: BLE001 - a kernel that died or would not start fails this step only
            step.status = "failed"
            step.error = {"ename": type(err).__name__, "evalue": str(err)[:500]}
        except KeyboardInterrupt:
            # Not done: the half-run notebook keeps a name that says so, the step's earlier copy (if any) goes, and
            # run_status.json records the interruption; the same command then runs this step again.
            step.status, step.seconds = "interrupted", time.perf_counter() - start
            step.error = {"ename": "KeyboardInterrupt", "evalue": "interrupted"}
            keep_interrupted(tmp, step.output)
            self.save_status()
            print("interrupted", flush=True)
            raise
        finally:
            step.seconds = time.perf_counter() - start
            if kernel and step.status != "ok":
                kernel.close()  # what the failure left in it goes with it
            if tmp.exists():
                try:
                    _finalise(tmp, step.output)
                except (OSError, ValueError) as err:  # cut short by a full disk: unreadable, so not kept
                    tmp.unlink(missing_ok=True)
                    if step.status == "ok" or not step.error:
                        step.status = "failed"
                        step.error = {"ename": type(err).__name__, "evalue": f"{step.output.name} not written: {err}"}
        if step.status == "ok":  # an earlier interrupted attempt of this step is now history
            step.output.with_name(f"{step.output.stem}.interrupted.ipynb").unlink(missing_ok=True)
        print(
            f"{step.seconds:7.1f}s  {'ok' if step.status == 'ok' else 'FAILED'}"
            + (f"  {step.error['ename']}: {step.error['evalue'].splitlines()[0][:160]}" if step.error else ""),
            flush=True,
        )
        if step.error and is_write_fault(step.error["evalue"]):
            # A full disk fails every later step too: stop here, with what finished kept for the resume.
            with contextlib.suppress(OSError):
                self.save_status()
            raise WriteFault.of(step.error["evalue"], f"into {self.run_dir} in {step.label}")
        self.save_status()
        return step.status == "ok"

    def save_status(self, finished: bool = False) -> None:
        failures = [
            {"label": s.label, "notebook": s.notebook, "executed": str(s.output), **s.error}
            for s in self.steps
            if s.status == "failed"
        ]
        status = {
            "argv": sys.argv[1:],
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.started)),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z") if finished else None,
            "wall_seconds": round(time.time() - self.started, 1),
            "steps": [s.to_dict() for s in self.steps],
            "failures": failures,
            "earlier": self.earlier,
        }
        atomic_write_json(self.layout.run_status, status)

    @property
    def failed(self) -> list[Step]:
        return [s for s in self.steps if s.status == "failed"]


def earlier_invocations(path: Path) -> list[dict[str, Any]]:
    """The status of every earlier `bertpeft run` into this folder, oldest first (a resumed run keeps the timings
    of the notebooks it skipped)."""
    try:
        status = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [*status.pop("earlier", []), status]


def keep_interrupted(tmp: Path, path: Path) -> None:
    """A step cut off mid-way: its half-run notebook `tmp` is kept as `X.interrupted.ipynb` beside `path`, and the
    step's earlier finished copy (`path`, if any) goes, so that nothing counts the step done."""
    path.unlink(missing_ok=True)
    if tmp.exists():
        os.replace(tmp, path.with_name(f"{path.stem}.interrupted.ipynb"))


def _finalise(tmp: Path, path: Path) -> None:
    """Move an executed notebook into place, its papermill record naming where it now is."""
    import nbformat

    nb = nbformat.read(str(tmp), as_version=4)
    nb.metadata.setdefault("papermill", {})["output_path"] = str(path)
    text = nbformat.writes(nb)
    write(path.parent.parent, path, text if text.endswith("\n") else text + "\n")  # as nbformat.write ends a file
    tmp.unlink()


def newer_than_results(path: Path, layout: RunDir) -> bool:
    """Whether `path` (the executed results notebook) and results.csv were written after every result JSON: a result
    that finished later, or a results step cut off before its end, makes the step run again."""
    try:
        written = min(path.stat().st_mtime, layout.results_csv.stat().st_mtime)
    except OSError:
        return False
    return all(result.stat().st_mtime <= written for result in layout.results.glob("*.json"))


def export_verified(run_dir: Path) -> bool:
    """Whether the run's export finished and passed its equality check (verification.json is written last)."""
    try:
        return bool(read_verification(run_dir).get("passed"))
    except (ExportError, OSError, ValueError):
        return False


def executed_ok(path: Path) -> bool:
    """Whether `path` is a notebook that papermill ran to the end without an exception."""
    try:
        made = json.loads(path.read_text(encoding="utf-8"))["metadata"]["papermill"]
    except (OSError, ValueError, KeyError):
        return False
    return bool(made.get("end_time")) and not made.get("exception")


def run_series(config: RunConfig, plan: SeriesPlan | None = None) -> int:
    """Execute 01, 02 per configuration and seed, 03 and 04 into `config`'s run folder; 0 when every step
    succeeded, 1 when one failed (each failure is recorded in run_status.json and the others go on)."""
    plan = plan or SeriesPlan.of(config)
    if importlib.util.find_spec("papermill") is None:
        raise ConfigError("bertpeft run executes the notebooks with papermill: pip install 'bertpeft[run]'")
    config = config.replace(configurations=plan.configurations, seeds=plan.seeds)
    folder = notebooks_dir()
    check_series(config)
    # One command at a time writes into the folder. The notebooks run under this lock: the library they call
    # takes none (only the commands do), so they never wait on it.
    with one_writer(config.run_dir):
        names = tuple(result_name(c, s) for c in config.configurations for s in config.seeds)
        claim_results(config, plan.force, same=same_settings(config), training=names)
        return execute_series(config, plan, folder)


def same_settings(config: RunConfig):
    """For `claim_results`: LoRA targets recorded by name are the same setting as `auto` when they are the names it
    stands for (run folders made before `auto` was the default)."""
    return lambda name, value: name == "lora_target_modules" and same_lora_targets(config, value)


def execute_series(config: RunConfig, plan: SeriesPlan, folder: Path) -> int:
    """The steps of `run_series`, once its checks passed and it holds the run folder."""
    force = plan.force
    run_dir, layout = config.run_dir, RunDir(config)
    layout.write_config(config)  # every notebook reads the run's settings from here
    # The kernels inherit these: no fork warnings from tokenizers, and no progress-bar widgets, which an executed
    # notebook would keep as dead "0%" bars (02 prints its own progress lines).
    for name, value in (
        ("TOKENIZERS_PARALLELISM", "false"),
        ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
        ("HF_DATASETS_DISABLE_PROGRESS_BARS", "1"),
    ):
        os.environ.setdefault(name, value)

    # The series prints one line per notebook and records failures in run_status.json; the executor's own log
    # lines (a kernel that died on Ctrl-C, asyncio's note about the task it left) would only repeat them.
    for name in ("papermill", "traitlets", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    series = Series(config, folder, force)
    common = {"output": str(run_dir)}
    quotes = {"quote_reviews": plan.quote_reviews}
    tuned = " with rates chosen on the validation reviews" if config.tune_lr else ""
    n_steps = 2 + len(config.configurations) * len(config.seeds) + (ADAPTER in config.configurations)
    n_steps += compared_here(config.configurations)
    print(
        f"bertpeft run: {n_steps} notebooks into {run_dir} (profile {config.profile}, model {config.model}, "
        f"configurations {', '.join(config.configurations)}, seeds {', '.join(map(str, config.seeds))}, "
        f"{trainings_needed(config)} trainings{tuned}; "
        f"{precision_words(config.precision)})",
        flush=True,
    )

    prep = series.step(PREP, PREP, {**common, **quotes})
    if not force and prepared_is_current(config) and executed_ok(prep.output) and series.intact(prep, layout.prepared):
        series.skip(prep, "prepared data already in the run folder")
    elif not series.execute(prep):
        return finish(series)  # without data no configuration can train

    changed = prep.status == "ok"  # something a later notebook reads was made anew
    retrained: set[str] = set()  # the results trained anew (the export depends on one of them only)
    with SharedKernel() as kernel:  # one kernel for the trainings, made afresh for each
        for configuration in config.configurations:
            for seed in config.seeds:
                name = result_name(configuration, seed)
                train = series.step(
                    TRAIN,
                    f"{TRAIN} {name}",
                    {**common, "configuration": configuration, "seed": seed, "progress": "lines"},
                    suffix=f"-{name}",
                )
                done = layout.result(configuration, seed)
                if not force and done.is_file() and not series.interrupted(train) and series.intact(train):
                    series.skip(train, f"already done ({done.relative_to(run_dir)})")
                    continue
                if series.execute(train, kernel):
                    changed = True
                    retrained.add(name)

    write_results_csv(run_dir)
    if ADAPTER in config.configurations:
        seed = config.seeds[0]
        export = series.step(EXPORT, EXPORT, {**common, **quotes, "seed": seed})
        if not layout.result(ADAPTER, seed).is_file():
            series.skip(export, f"no trained LoRA model ({result_name(ADAPTER, seed)} did not finish)")
        elif (
            not (force or prep.status == "ok" or result_name(ADAPTER, seed) in retrained)
            and executed_ok(export.output)
            and export_verified(run_dir)
            and series.intact(export)
        ):
            series.skip(export, "export already in the run folder, verified")
        else:
            series.execute(export)

    results = series.step(RESULTS, RESULTS, {**common, **quotes, "interactive": False})
    read_results_step(series, results, force or changed, "results and figures already up to date")
    if compared_here(config.configurations):
        methods = series.step(METHODS_NOTEBOOK, METHODS_NOTEBOOK, common)
        read_results_step(series, methods, force or changed, "method comparison already up to date")
    return finish(series)


def read_results_step(series: Series, step: Step, redo: bool, current: str) -> None:
    """A notebook that reads the run's results (04, 06): skipped without any result, or (unless `redo`) when its
    executed copy is newer than every result; else executed."""
    layout = series.layout
    if not any(layout.results.glob("*.json")):
        series.skip(step, "no result to report: no configuration finished")
    # its outputs checked first, so that damage is named (and set aside) even where the step is redone anyway
    elif (
        series.intact(step, layout.results_csv, under="figures")
        and not redo
        and executed_ok(step.output)
        and newer_than_results(step.output, layout)
    ):
        series.skip(step, current)
    else:
        series.execute(step)


def finish(series: Series) -> int:
    series.save_status(finished=True)
    wall = time.time() - series.started
    failed = series.failed
    if not failed:
        print(f"done in {wall:.0f}s: {series.run_dir}", flush=True)
        return 0
    names = ", ".join(s.label for s in failed)
    print(
        f"bertpeft: {len(failed)} notebook(s) failed after {wall:.0f}s: {names}. Their executed copies in "
        f"{series.layout.notebooks} show the error; see {series.layout.run_status}",
        file=sys.stderr,
        flush=True,
    )
    return 1
