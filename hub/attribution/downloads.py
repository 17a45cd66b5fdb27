"""Module downloads with the partner code stamped in: the installer reads the stamp file and
reports it with the installation (`POST /api/v1/installs`).

The operator's archive is never modified: each download is a copy with one small file appended
(appending rewrites only the zip's central directory, so nothing is recompressed).
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import PurePosixPath
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING

from hub.errors import StartupError

if TYPE_CHECKING:
    from hub.config import DownloadConfig

# Spool in memory up to this size, then on disk: module archives are usually a few MB.
SPOOL_BYTES = 8 * 1024 * 1024


def check_download(conf: "DownloadConfig", where: str) -> "DownloadConfig":
    """Refuse at start-up an archive that is missing, not a zip, or already holds the stamp."""
    path = PurePosixPath(conf.stamp_path)
    if not conf.stamp_path or path.is_absolute() or ".." in path.parts or "\\" in conf.stamp_path:
        raise StartupError(f"[{where}] stamp_path must be a relative path inside the archive, "
                           f"not {conf.stamp_path!r}")
    try:
        with zipfile.ZipFile(conf.archive) as archive:
            names = set(archive.namelist())
    except FileNotFoundError:
        raise StartupError(f"[{where}] archive: file {conf.archive!r} not found") from None
    except (zipfile.BadZipFile, IsADirectoryError, PermissionError):
        raise StartupError(f"[{where}] archive: {conf.archive!r} is not a readable zip "
                           "file") from None
    if conf.stamp_path in names:
        raise StartupError(f"[{where}] stamp_path: the archive already contains "
                           f"{conf.stamp_path!r}; ship it without that file")
    return conf


def stamped_copy(conf: "DownloadConfig", code: str | None) -> IO[bytes]:
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
