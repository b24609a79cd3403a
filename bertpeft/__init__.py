"""bertpeft: fine-tune BERT for review sentiment, from a frozen model to LoRA and full fine-tuning.

Importing the package does nothing but define names; the stage modules (data, models, training, ...) import
their heavy dependencies when called.
"""

__version__ = "0.1.0"

from .config import CONFIGURATIONS, ConfigError, RunConfig, profile_config  # noqa: E402

__all__ = ["CONFIGURATIONS", "ConfigError", "RunConfig", "profile_config", "__version__"]
