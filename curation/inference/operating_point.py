"""``operating_point.json``: the P(yes) threshold chosen for a checkpoint, and the answer at it.

One module writes and reads it (eval and quantize write, predict, serve and eval's clean-up
read). ``curate eval`` writes it beside its checkpoint; ``curate quantize`` into the model
folder, re-fitted on its calibration set, beside the folder's weights. The file
names the checkpoint it was chosen for by name and by a fingerprint of its bytes
(``checkpoint_fingerprint``), so a point copied beside another run's checkpoint of the
same name is not used; nor is one without a fingerprint (edited, or from before it).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

from curation.contract import OPERATING_POINT_FILE
from curation.errors import DataError

#: curate eval writes a few hundred bytes; a larger file is not one of ours.
MAX_BYTES = 1 << 20
#: Bytes read from each end of a checkpoint for its fingerprint (a BLIP-2 checkpoint is GBs).
_EDGE = 1 << 20


#: The key holding :func:`fingerprint` in the file.
FINGERPRINT_KEY = "checkpoint_fingerprint"


def fingerprint(checkpoint: Path) -> str:
    """``size:sha256`` of a checkpoint's size and first and last MiB (cheap on multi-GB files).

    Not the file's sha256sum (that would read GBs at every predict). Two epochs of one run
    differ there: the zip's first entries are weights, its last the directory of offsets.
    """
    h = hashlib.sha256()
    size = checkpoint.stat().st_size
    h.update(str(size).encode())
    with open(checkpoint, "rb") as fh:
        h.update(fh.read(_EDGE))
        if size > _EDGE:
            fh.seek(max(_EDGE, size - _EDGE))
            h.update(fh.read(_EDGE))
    return f"{size}:{h.hexdigest()}"


def write_point(out_dir: Path, point: dict[str, Any], checkpoint: Path) -> Path:
    """Write ``point`` (threshold, recall, ...) for ``checkpoint`` into ``out_dir``."""
    from curation._io import atomic_write_json

    path = out_dir / OPERATING_POINT_FILE
    atomic_write_json(
        path,
        {**point, "checkpoint": checkpoint.name, FINGERPRINT_KEY: fingerprint(checkpoint)},
    )
    return path


def _read(path: Path, fix: str) -> dict[str, Any]:
    """The file's JSON object; DataError naming what is wrong with it."""
    from curation._io import not_a_file, path_kind

    kind = path_kind(path, "operating point")
    if kind == "missing" and path.is_symlink():
        raise DataError(f"{path} is a link to {os.readlink(path)}, which does not exist. {fix}")
    if kind != "file":  # a FIFO would block, /dev/zero would fill memory
        raise DataError(f"{path} {not_a_file(kind)}. {fix}")
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror}). {fix}") from None
    if len(raw) > MAX_BYTES:
        raise DataError(
            f"{path}: larger than {MAX_BYTES} bytes, not an operating point written by "
            f"curate eval. {fix}"
        )
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text, not an operating point. {fix}") from None
    except ValueError as exc:
        raise DataError(f"{path}: not valid JSON ({exc}). {fix}") from None
    except RecursionError:
        raise DataError(f"{path}: JSON nested too deeply. {fix}") from None
    if not isinstance(data, dict):
        raise DataError(
            f"{path}: a JSON {type(data).__name__}, not the object curate eval writes "
            f"({{'threshold': ..., 'checkpoint': ...}}). {fix}"
        )
    return data


def chosen_for(path: Path, checkpoint: Path) -> tuple[bool | None, str]:
    """Whether the point at ``path`` was chosen for ``checkpoint`` (None: unreadable, or it
    names no checkpoint), and the checkpoint name it gives ("another checkpoint" if none);
    one read of the file."""
    try:
        data = _read(path, "")
    except DataError:
        return None, "another checkpoint"
    name, sha = data.get("checkpoint"), data.get(FINGERPRINT_KEY)
    shown = name if isinstance(name, str) else "another checkpoint"
    if not isinstance(name, str) and not isinstance(sha, str):
        return None, shown
    if name != checkpoint.name:
        return False, shown
    return not isinstance(sha, str) or sha == fingerprint(checkpoint), shown


def answer_at(p_yes: float, threshold: float) -> str:
    """The task answer at an operating point: "yes" when ``p_yes >= threshold``.

    A "never yes" point (``never_yes``: no threshold within 1 met the false-alarm budget)
    sits above 1, so every P(yes) answers "no".
    """
    return "yes" if p_yes >= threshold else "no"


def saved_threshold(checkpoint: Path) -> tuple[float | None, str]:
    """The operating point ``curate eval`` wrote beside ``checkpoint``, and a note on it.

    A point chosen for another checkpoint (another name, or the same name with other
    bytes) is not used; the note says so.

    Raises:
        DataError: the file is not an operating point, or its threshold is not in [0, 1].
    """
    from curation.evaluate.metrics import NEVER_YES

    path = checkpoint.parent / OPERATING_POINT_FILE
    if not os.path.lexists(path):
        return None, ""
    fix = "Fix: run curate eval again, delete the file, or pass --threshold."
    data = _read(path, fix)
    if "threshold" not in data:
        raise DataError(f"{path}: no 'threshold' key, not an operating point. {fix}")
    value = data["threshold"]
    # eval's "never yes" point sits just above 1 (a budget no threshold within 1 meets)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (math.isfinite(value) and 0 <= value <= NEVER_YES)
    ):
        raise DataError(f"{path}: 'threshold' must be a number from 0 to 1, got {value!r}. {fix}")
    name, sha = data.get("checkpoint"), data.get(FINGERPRINT_KEY)
    again = f"run curate eval {checkpoint.name}, or pass --threshold"
    if name != checkpoint.name:
        chosen = f"was chosen for {name}" if isinstance(name, str) else "names no checkpoint"
        return None, f"{path.name} {chosen}, not {checkpoint.name}: not used ({again})"
    if not isinstance(sha, str):
        return None, (
            f"{path.name} has no {FINGERPRINT_KEY} (edited, or written by an older curate "
            f"eval), so nothing shows it was chosen for this file: not used ({again})"
        )
    if sha != fingerprint(checkpoint):
        return None, (
            f"{path.name} was chosen for another file named {checkpoint.name} (its bytes "
            f"differ): not used ({again})"
        )
    return float(value), _describe(path.name, data)


def _describe(name: str, data: dict[str, Any]) -> str:
    """Where the point came from: the split it was chosen on and its size, if said."""
    on, n = data.get("chosen_on"), data.get("n")
    said = ", ".join(
        part
        for part in (
            f"chosen on {on}" if isinstance(on, str) else "",
            f"{n} records" if isinstance(n, int) and not isinstance(n, bool) else "",
        )
        if part
    )
    return f"operating point from {name}" + (f", {said}" if said else "")
