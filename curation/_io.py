"""Small file helpers: atomic writes and checksums."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def dumps_json(obj: Any) -> str:
    """Deterministic, readable JSON (what every export writes)."""
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, dumps_json(obj))


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def path_kind(path: Path, what: str) -> str:
    """ "dir", "file" or "missing"; a path the system refuses (too long...) is a usage error."""
    try:
        if path.is_dir():
            return "dir"
        return "file" if path.is_file() else "missing"
    except (OSError, ValueError) as exc:
        shown = (
            str(path)
            if len(str(path)) <= 200
            else f"{str(path)[:200]}... ({len(str(path))} characters)"
        )
        reason = getattr(exc, "strerror", None) or str(exc)
        from curation.errors import UsageError

        raise UsageError(f"{what} {shown}: {reason}. Fix: give a shorter, existing path") from None
