"""Where downloaded weight files are kept, and a download that only keeps verified bytes.

Pretrained networks (the VGG-19 loss network, the FID Inception) cannot be bundled; users
fetch them once into a cache folder. A file is only trusted after its sha256 matched, so a
tampered or cut-off download never leaves a file that a later run would load.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from dkt.atomic import atomic_path
from dkt.errors import WeightsDownloadError

__all__ = ["WeightsDownloadError", "cache_dir", "download_file"]


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/dkt`` or ``~/.cache/dkt``: where downloaded weights are kept."""
    env = os.environ if env is None else env
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dkt"


def download_file(url: str, dest: str | Path, *, sha256_prefix: str, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` only if its sha256 starts with ``sha256_prefix``.

    The data goes to a temporary file next to ``dest`` and takes the final name only after
    the checksum matched, so an interrupted or tampered download never leaves a file that a
    later run would trust.
    """
    dest = Path(dest)
    prefix = sha256_prefix.lower()
    digest = hashlib.sha256()
    try:
        with atomic_path(dest) as tmp:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as fh:
                for block in iter(lambda: response.read(1 << 20), b""):
                    digest.update(block)
                    fh.write(block)
            got = digest.hexdigest()
            if not got.startswith(prefix):
                raise WeightsDownloadError(
                    f"{url}: checksum mismatch (sha256 {got[: len(prefix)]}..., expected "
                    f"{prefix}...); the download was discarded"
                )
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise WeightsDownloadError(f"{url}: download failed ({reason})") from exc
    return dest
