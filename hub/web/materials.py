"""Advertising materials on disk: one file per material, named by its id (never by the uploaded
name, so an upload cannot choose where it lands)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import BinaryIO

from hub.runtime import Hub

INLINE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}


def directory(hub: Hub) -> Path:
    path = Path(hub.config.server.materials_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def path_of(hub: Hub, material_id: str) -> Path:
    return directory(hub) / material_id


def store(hub: Hub, material_id: str, source: BinaryIO) -> int:
    """Copy the upload to disk; returns its size in bytes."""
    target = path_of(hub, material_id)
    with target.open("wb") as out:
        shutil.copyfileobj(source, out)
    return target.stat().st_size


def remove(hub: Hub, material_id: str) -> None:
    path_of(hub, material_id).unlink(missing_ok=True)


def safe_filename(name: str) -> str:
    """The uploaded name, reduced to what is safe in a Content-Disposition header."""
    keep = "".join(c for c in Path(name).name if c.isalnum() or c in "._- ")
    return keep.strip()[:120] or "material"
