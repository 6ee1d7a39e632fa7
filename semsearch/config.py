"""Every environment variable semsearch reads or sets, in one place.

Nothing else in the package looks at ``os.environ``: a reader of this file knows every way the
environment changes what semsearch does.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: where index names live (default ./indexes)
INDEX_ROOT_VARIABLE = "SEMSEARCH_INDEX_ROOT"
#: the index used when none is named (default "default")
INDEX_VARIABLE = "SEMSEARCH_INDEX"
#: where exported models are kept (default $XDG_CACHE_HOME/semsearch or ~/.cache/semsearch)
CACHE_VARIABLE = "SEMSEARCH_CACHE"
DEFAULT_INDEX = "default"
#: the token `semsearch serve` asks of every request (as --token, which a process list shows)
TOKEN_VARIABLE = "SEMSEARCH_TOKEN"

#: Set before a library that could reach the network is loaded: semsearch never downloads a
#: model and never reports usage (Hugging Face hub, transformers; onnxruntime, which otherwise
#: uploads usage events from a thread of its own and keeps them under ~/.cache/Microsoft; Ray).
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
           "HF_DATASETS_OFFLINE": "1", "ORT_DISABLE_TELEMETRY": "1",
           # Ray (`--ray`): no usage statistics reported, for the instances semsearch starts
           "RAY_USAGE_STATS_ENABLED": "0"}


#: Set while semsearch starts a Ray instance on this machine (`--ray` with no address), so that
#: its processes inherit them, and put back afterwards. The instance stays on the loopback
#: address (Ray otherwise finds this machine's address by connecting to 8.8.8.8), and its
#: plain HTTP requests go to a closed local port: its dashboard asks cloud metadata services
#: which cloud it runs in, with usage statistics off too. Ray's own traffic is local.
LOCAL_RAY = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
             **{name: "http://127.0.0.1:9" for name in ("HTTP_PROXY", "HTTPS_PROXY",
                                                        "http_proxy", "https_proxy")},
             **{name: "127.0.0.1,localhost,::1" for name in ("NO_PROXY", "no_proxy")}}


def index_root() -> Path:
    return Path(os.environ.get(INDEX_ROOT_VARIABLE) or "indexes")


def default_index() -> str:
    return os.environ.get(INDEX_VARIABLE) or DEFAULT_INDEX


def cache_root() -> Path:
    configured = os.environ.get(CACHE_VARIABLE)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "semsearch"


def server_token() -> str | None:
    return os.environ.get(TOKEN_VARIABLE) or None


def offline_environment() -> dict[str, str]:
    """This process's environment with the offline settings, for a child process."""
    return {**OFFLINE, **os.environ}


def stay_offline() -> None:
    """Tell the libraries loaded next never to go online (a user's own setting wins)."""
    for name, value in OFFLINE.items():
        os.environ.setdefault(name, value)


@contextmanager
def local_ray_environment() -> Iterator[None]:
    """LOCAL_RAY in this process's environment for the duration (see there)."""
    saved = {name: os.environ.get(name) for name in LOCAL_RAY}
    os.environ.update(LOCAL_RAY)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
