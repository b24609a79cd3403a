"""The Hugging Face Hub, or its absence: decide in seconds instead of minutes of retries.

The Hub is whatever huggingface_hub talks to: `HF_ENDPOINT` (a mirror, say), reached the way its HTTP client
reaches it (through `HTTPS_PROXY` / `HTTP_PROXY` when they are set). When the user sets `HF_HUB_OFFLINE`, that is
the answer and nothing is asked.
"""

from __future__ import annotations

_said: set[str] = set()  # the endpoints this process has already said it works without


def hub_endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def hub_reachable(timeout: float = 3.0) -> tuple[bool, str]:
    """Whether the Hub's endpoint answers an HTTP request made as huggingface_hub makes them (its own session, so
    its proxies and headers), within `timeout` seconds; with the reason when it does not. Any answer counts, even
    an error status: the endpoint is there."""
    from huggingface_hub.utils import get_session

    try:
        get_session().head(hub_endpoint(), timeout=timeout)
    except Exception as err:  # noqa: BLE001 - every way of not reaching it means the same here
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return False, reason
    return True, ""


def offline_unless_reachable() -> bool:
    """Work from the cache for the rest of this process when the Hub's endpoint cannot be reached, so a cached copy
    still loads and a missing one fails at once (huggingface_hub would otherwise retry for about half a minute);
    says so once, with the reason. Only this process's libraries are switched (huggingface_hub, transformers and
    datasets read the flag set here); the environment, and so any process started later, is left as it was.
    Returns whether this process works offline."""
    from huggingface_hub import constants

    if constants.is_offline_mode():
        return True
    reachable, reason = hub_reachable()
    if reachable:
        return False
    constants.HF_HUB_OFFLINE = True
    try:
        import datasets.config

        datasets.config.HF_HUB_OFFLINE = True
    except ImportError:
        pass
    endpoint = hub_endpoint()
    if endpoint not in _said:
        _said.add(endpoint)
        print(f"The Hugging Face Hub at {endpoint} cannot be reached ({reason}): working offline, cached files only.")
    return True
