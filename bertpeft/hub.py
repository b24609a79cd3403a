"""The Hugging Face Hub, or its absence: one bounded question before the libraries' own minutes of retries.

The Hub is whatever huggingface_hub talks to: `HF_ENDPOINT` (a mirror, say), reached the way its HTTP client
reaches it (through `HTTPS_PROXY` / `HTTP_PROXY` when they are set), with the user's token when there is one. When
the user sets `HF_HUB_OFFLINE`, that is the answer and nothing is asked.

Before a model or a dataset is loaded by Hub id, `reach_repository` asks for one of its files once, without
retries, within huggingface_hub's metadata timeout (`HF_HUB_ETAG_TIMEOUT`, 10 s unless the user sets it):
- no connection at all (no network, a closed port, a refusing proxy): this process works offline from then on
  (cached files only), said once, with the reason; the environment, and so every process started later, is left
  as it was;
- an answer that the repository does not exist, is gated, or that the server failed, or no answer in time: one
  line naming the repository, the endpoint and the fix (`RepositoryUnavailable`), before any work.
"""

from __future__ import annotations

from .config import first_line

PROBE_FILES = {"model": "config.json", "dataset": "README.md"}  # a file each kind of repository almost always has

_said: set[str] = set()  # the endpoints this process has already said it works without


class RepositoryUnavailable(Exception):
    """The Hub answered, but not with the repository: the message names it, the endpoint and the fix."""


def hub_endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT.rstrip("/")


def work_offline(reason: str) -> None:
    """Switch this process's Hub libraries (huggingface_hub, transformers, datasets) to their cache, saying so once."""
    from huggingface_hub import constants

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


def reach_repository(repo_id: str, kind: str = "model") -> bool:
    """Ask the Hub once for `repo_id`'s probe file (HEAD, no retries, within HF_HUB_ETAG_TIMEOUT). Returns whether this
    process works offline; raises RepositoryUnavailable when the Hub answered without the repository."""
    from huggingface_hub import constants
    from huggingface_hub.utils import build_hf_headers, get_session

    if constants.is_offline_mode():
        return True
    endpoint = hub_endpoint()
    prefix = "datasets/" if kind == "dataset" else ""
    url = f"{endpoint}/{prefix}{repo_id}/resolve/main/{PROBE_FILES[kind]}"
    seconds = float(constants.HF_HUB_ETAG_TIMEOUT)
    try:
        response = get_session().head(url, headers=build_hf_headers(), timeout=seconds)
    except Exception as err:  # noqa: BLE001 - the HTTP client's errors, whichever client huggingface_hub uses
        kinds = {cls.__name__ for cls in type(err).__mro__}
        if kinds & {"ReadTimeout", "WriteTimeout", "PoolTimeout"}:  # connected, but no answer in time
            raise RepositoryUnavailable(
                f"the Hugging Face Hub at {endpoint} did not answer within {seconds:g} s for {kind} "
                f"{repo_id!r}: try again later, or set HF_HUB_OFFLINE=1 to use what is cached"
            ) from None
        work_offline(first_line(err))  # no connection: no network, a closed port, a proxy that refuses
        return True
    code = response.headers.get("X-Error-Code", "")
    status = response.status_code
    if code == "GatedRepo" or (status == 403 and code != "RepoNotFound"):
        raise RepositoryUnavailable(
            f"{kind} {repo_id!r} on {endpoint} is gated: accept its conditions on its page, then log in "
            f"(`hf auth login`) or set HF_TOKEN"
        )
    if code == "RepoNotFound" or status == 401:
        raise RepositoryUnavailable(
            f"no {kind} {repo_id!r} on {endpoint}: check the id; a private repository needs a login (`hf auth login`) "
            f"or HF_TOKEN"
        )
    if status >= 500:
        raise RepositoryUnavailable(
            f"the Hugging Face Hub at {endpoint} answered {status} for {kind} {repo_id!r}: try again later, or set "
            f"HF_HUB_OFFLINE=1 to use what is cached"
        )
    return False  # the repository is there (a missing probe file, 404 EntryNotFound, is the library's to judge)
