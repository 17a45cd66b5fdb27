"""Module downloads with the partner code stamped in: the installer reads the stamp file and
reports it with the installation (`POST /api/v1/installs`).

The operator's archive is never modified: each download is a copy with one small file appended
(appending rewrites only the zip's central directory, so nothing is recompressed).
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from typing import IO

from hub.config import DownloadConfig

# Spool in memory up to this size, then on disk: module archives are usually a few MB.
SPOOL_BYTES = 8 * 1024 * 1024


def stamped_copy(conf: DownloadConfig, code: str | None) -> IO[bytes]:
    """A readable copy of the archive, positioned at 0, with `code` written to the stamp path
    (the plain archive when `code` is None)."""
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
    with open(conf.archive, "rb") as source:
        shutil.copyfileobj(source, out)
    if code is not None:
        out.seek(0)
        with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(conf.stamp_path, code + "\n")
    out.seek(0)
    return out  # type: ignore[return-value]


def iter_file(handle: IO[bytes], chunk: int = 64 * 1024) -> Iterator[bytes]:
    """Stream a spooled copy, closing it when done."""
    try:
        while data := handle.read(chunk):
            yield data
    finally:
        handle.close()
