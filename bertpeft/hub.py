"""The Hugging Face Hub, or its absence: decide in seconds instead of minutes of retries."""

from __future__ import annotations

import os
import socket

HUB_HOST = ("huggingface.co", 443)


def hub_reachable(timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection(HUB_HOST, timeout=timeout):
            return True
    except OSError:
        return False


def offline_unless_reachable() -> bool:
    """Switch this process to offline mode when the Hub cannot be reached, so a cached copy still loads and a
    missing one fails at once (huggingface_hub would otherwise retry for about a minute). Returns offline."""
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return True
    if hub_reachable():
        return False
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:  # the libraries read the variable at import: update their copies too
        import huggingface_hub.constants as hub_constants

        hub_constants.HF_HUB_OFFLINE = True
    except ImportError:
        pass
    try:
        import datasets.config

        datasets.config.HF_HUB_OFFLINE = True
    except ImportError:
        pass
    print("Hugging Face Hub unreachable: working offline (cached files only).")
    return True
