"""Look at what the trained configurations do: predictions on any review, and the test reviews they get wrong.

With a live Jupyter frontend these are ipywidgets; under papermill (`interactive=False`) they return tables
instead, so an executed notebook shows something useful and nothing waits for input.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .config import RunConfig
from .configurations import trains
from .data import quote_review
from .layout import RunDir, read_results
from .models import load_tokenizer, load_trained_model
from .report import configuration_rank
from .result import Result

# Plainly positive, plainly negative, mixed, and an idiom that a model reading words literally gets wrong.
EXAMPLE_REVIEWS = (
    "Delicious brisket and friendly staff who remembered our names. We'll be back every week.",
    "Waited forty minutes for cold fries and a rude shrug from the cashier. Never again.",
    "The rooms were clean and the location is great, but the front desk lost our booking twice.",
    "The brisket melted in my mouth.",
)
SHOWN_CHARS = 300


def _short(text: str, limit: int = SHOWN_CHARS) -> str:
    return quote_review(text, True, limit)


def finished_results(run_dir: str | Path, one_seed: bool = True) -> list[Result]:
    """The run's result JSONs in order of complexity (the first seed of each configuration when `one_seed`)."""
    results = sorted(read_results(Path(run_dir)), key=lambda r: (configuration_rank(r.config), r.seed))
    if not one_seed:
        return results
    seen, first = set(), []
    for result in results:
        if result.config not in seen:
            seen.add(result.config)
            first.append(result)
    return first


@contextmanager
def quiet_loading():
    """No "Loading weights" bars while rebuilding the models: the tables are the output."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


class Predictor:
    """Each trained configuration of a run, rebuilt from its saved weights (`models/<config>-seed<seed>/`)."""

    def __init__(self, run_dir: str | Path, device: str = "cpu"):
        self.run_dir, self.device = Path(run_dir), device
        self.results = finished_results(self.run_dir)
        self._models: dict[str, Any] = {}
        self._tokenizer = None

    @property
    def names(self) -> list[str]:
        return [r.config for r in self.results]

    def model(self, result: Result):
        if result.name not in self._models:
            from transformers import set_seed

            config = RunConfig.from_dict(result.run_config)
            id2label = result.labels_by_id
            set_seed(config.seed)  # `none` keeps its random head: the same draw as in training
            with quiet_loading():
                self._models[result.name] = load_trained_model(
                    config, RunDir(self.run_dir).weights(result.name), result.num_labels, id2label
                ).to(self.device)
        return self._models[result.name]

    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.results[0].model)
        return self._tokenizer

    def predict(self, texts: list[str]):
        """One row per review and configuration: the predicted label and the model's confidence in it."""
        import pandas as pd
        import torch

        max_length = self.results[0].run_config["max_length"]
        batch = self.tokenizer()(
            list(texts), truncation=True, max_length=max_length, padding=True, return_tensors="pt"
        ).to(self.device)
        rows = []
        for result in self.results:
            with torch.inference_mode():
                probs = torch.softmax(self.model(result)(**batch).logits.float(), -1)
            confidence, label = probs.max(-1)
            for i, text in enumerate(texts):
                rows.append(
                    {
                        "review": _short(text, 80),
                        "config": result.config,
                        "prediction": result.label(label[i]),
                        "confidence": round(float(confidence[i]), 3),
                    }
                )
        return pd.DataFrame(rows)


def prediction_table(predictor: Predictor, texts) -> Any:
    """Predictions as a review x configuration grid of `label (confidence)`."""
    frame = predictor.predict(list(texts))
    frame["cell"] = frame["prediction"] + " (" + frame["confidence"].map("{:.2f}".format) + ")"
    grid = frame.pivot(index="review", columns="config", values="cell")
    return grid.loc[[_short(t, 80) for t in texts], predictor.names]


def test_reviews(run_dir: str | Path):
    """The prepared test split (text and label), in the order the result JSONs' predictions follow."""
    import datasets

    return datasets.load_from_disk(str(RunDir(run_dir).prepared))["test"]


def misclassified(run_dir: str | Path, config: str | None = None):
    """Test reviews a configuration got wrong (all configurations when `config` is None), most confident first."""
    import pandas as pd

    test = test_reviews(run_dir)
    labels, texts = test["label"], test["text"]
    rows = []
    for result in finished_results(run_dir):
        if config is not None and result.config != config:
            continue
        for i, (predicted, confidence) in enumerate(
            zip(result.test_predictions, result.test_probabilities, strict=True)
        ):
            if predicted != labels[i]:
                rows.append(
                    {
                        "config": result.config,
                        "row": i,
                        "label": result.label(labels[i]),
                        "prediction": result.label(predicted),
                        "confidence": round(confidence, 3),
                        "review": texts[i],
                    }
                )
    frame = pd.DataFrame(rows, columns=["config", "row", "label", "prediction", "confidence", "review"])
    ranks = frame["config"].map(configuration_rank)
    return (
        frame.assign(_rank=ranks)
        .sort_values(["_rank", "confidence"], ascending=[True, False])
        .drop(columns="_rank")
        .reset_index(drop=True)
    )


def misclassified_summary(run_dir: str | Path, shown: int = 2, quote: bool = True):
    """The `shown` most confident mistakes of each configuration (review shortened, or only its length when not
    `quote`), with its error count."""
    wrong = misclassified(run_dir)
    errors = wrong.groupby("config", sort=False)["row"].transform("size")
    top = wrong.assign(errors=errors).groupby("config", sort=False).head(shown)
    top = top.assign(review=top["review"].map(lambda t: quote_review(t, quote, SHOWN_CHARS)))
    return top[["config", "errors", "row", "label", "prediction", "confidence", "review"]].reset_index(drop=True)


def hard_reviews(run_dir: str | Path, quote: bool = True, shown: int = 10):
    """The test reviews that every trained configuration gets wrong with every seed it trained with (`none`, which
    learns nothing, left out): each with its position in the test split, true label, length in tokens, and the mean
    confidence of the wrong predictions; the review shortened, or only its length when not `quote`. Returns the
    number of such reviews and the `shown` most confidently mistaken."""
    import numpy as np
    import pandas as pd

    results = [r for r in finished_results(run_dir, one_seed=False) if trains(r.config)]
    columns = ["row", "label", "tokens", "wrong_confidence", "review"]
    if not results:
        return 0, pd.DataFrame(columns=columns)
    labels = np.asarray(results[0].test_labels)
    wrong = np.ones(len(labels), dtype=bool)
    confidence = np.zeros(len(labels))
    for result in results:
        wrong &= np.asarray(result.test_predictions) != labels
        confidence += np.asarray(result.test_probabilities)
    rows = np.flatnonzero(wrong)
    test = test_reviews(run_dir)

    frame = pd.DataFrame(
        {
            "row": rows,
            "label": [results[0].label(labels[i]) for i in rows],
            "tokens": [len(test[int(i)]["input_ids"]) for i in rows],
            "wrong_confidence": np.round(confidence[rows] / len(results), 3),
            "review": [quote_review(test[int(i)]["text"], quote, SHOWN_CHARS) for i in rows],
        },
        columns=columns,
    )
    frame = frame.sort_values("wrong_confidence", ascending=False).reset_index(drop=True)
    return len(rows), frame.head(shown)


def prediction_explorer(run_dir: str | Path, interactive: bool = True, quote: bool = True):
    """Type or pick a review; see every configuration's prediction. Static table of the made-up example reviews when
    not interactive. The picks include the run's test reviews only when `quote`."""
    predictor = Predictor(run_dir)
    if not interactive:
        return prediction_table(predictor, EXAMPLE_REVIEWS)
    import ipywidgets as widgets
    from IPython.display import display

    picks = list(EXAMPLE_REVIEWS) + ([_short(t, 200) for t in test_reviews(run_dir)["text"][:7]] if quote else [])
    pick = widgets.Dropdown(
        options=[(_short(t, 90), t) for t in picks], description="pick:", layout=widgets.Layout(width="95%")
    )
    text = widgets.Textarea(value=picks[0], description="review:", layout=widgets.Layout(width="95%", height="80px"))
    button = widgets.Button(description="Predict", button_style="primary")
    out = widgets.Output()

    def show(_=None):
        out.clear_output()
        with out:
            if text.value.strip():
                display(predictor.predict([text.value])[["config", "prediction", "confidence"]])

    pick.observe(lambda change: setattr(text, "value", change["new"]), names="value")
    button.on_click(show)
    show()
    return widgets.VBox([pick, text, button, out])


def misclassified_browser(run_dir: str | Path, interactive: bool = True, quote: bool = True):
    """Step through the test reviews each configuration got wrong. Static summary when not interactive. With
    `quote=False` a review shows only its length (see `quote_review`)."""
    if not interactive:
        return misclassified_summary(run_dir, quote=quote)
    import ipywidgets as widgets

    wrong = misclassified(run_dir)
    names = list(dict.fromkeys(wrong["config"]))
    config = widgets.Dropdown(options=names, description="config:")
    index = widgets.IntSlider(min=0, max=0, description="mistake:")
    view = widgets.HTML()

    def show(_=None):
        rows = wrong[wrong["config"] == config.value].reset_index(drop=True)
        index.max = max(len(rows) - 1, 0)
        if rows.empty:
            view.value = "<i>no mistakes</i>"
            return
        row = rows.iloc[min(index.value, len(rows) - 1)]
        view.value = (
            f"<b>{len(rows)}</b> test reviews wrong. Test row {row['row']}: label <b>{row['label']}</b>, "
            f"predicted <b>{row['prediction']}</b> with confidence {row['confidence']:.2f}"
            f"<p style='max-width:60em'>{_escape(quote_review(row['review'], quote))}</p>"
        )

    config.observe(show, names="value")
    index.observe(show, names="value")
    show()
    return widgets.VBox([widgets.HBox([config, index]), view])


def _escape(text: str) -> str:
    import html

    return html.escape(str(text))
