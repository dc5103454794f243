"""Checkpoints: the one loader behind predict, eval, resume and pretrained weights.

A ``.pth`` file is a pickle, and a pickle can name any function for torch to
import and call while loading. So checkpoints are read with torch's
``weights_only`` unpickler, which accepts tensors and plain containers only:
everything LAVIS's runner saves (``model``, ``optimizer``, ``config`` as a
plain dict, ``scaler``, ``epoch``) is made of those, so nothing needs to be
allow-listed. Anything else is refused unless the caller trusts the file
(``--trust-checkpoint``), which loads it as full pickle.

LAVIS's checkpoints leave out frozen parameters, and tied weights (T5's
``encoder.embed_tokens.weight`` is ``shared.weight``) appear under several
names; both are told apart from real mismatches here, once.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from curation.errors import DataError

TRUST_HINT = (
    "If you made this file yourself and trust it, pass --trust-checkpoint: that loads it "
    "as full pickle, which runs any code the file contains."
)

_trusted: ContextVar[bool] = ContextVar("trusted_checkpoints", default=False)

_NUMBERED = re.compile(r"checkpoint_(\d+)\.pth")


@contextlib.contextmanager
def trusted_checkpoints(trust: bool = True) -> Iterator[None]:
    """Within the block, load checkpoints as full pickle (``curate train --trust-checkpoint``).

    Training reads checkpoints deep inside LAVIS's runner (resume, pretrained
    weights); this is how a caller's trust reaches those loads.
    """
    token = _trusted.set(trust)
    try:
        yield
    finally:
        _trusted.reset(token)


def checkpoint_epoch(path: str | os.PathLike[str]) -> int | None:
    """The epoch of ``checkpoint_<N>.pth``; None for any other name (``checkpoint_best.pth``)."""
    match = _NUMBERED.fullmatch(Path(path).name)
    return int(match.group(1)) if match else None


def sorted_checkpoints(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Numbered checkpoints by epoch (``checkpoint_9`` before ``checkpoint_10``), then the rest."""

    def key(p: Path) -> tuple[int, int, str]:
        epoch = checkpoint_epoch(p)
        return (0, epoch, p.name) if epoch is not None else (1, 0, p.name)

    return sorted((Path(p) for p in paths), key=key)


def latest_checkpoint(paths: Iterable[str | os.PathLike[str]]) -> Path | None:
    """The numbered checkpoint of the highest epoch (not file times: copies change those)."""
    numbered = [p for p in sorted_checkpoints(paths) if checkpoint_epoch(p) is not None]
    return numbered[-1] if numbered else None


def read_checkpoint(
    path: str | os.PathLike[str], trust: bool | None = None, map_location: Any = "cpu"
) -> dict[str, Any]:
    """Read a checkpoint file safely; return it as a dict whose ``model`` is a state dict.

    Args:
        trust: load as full pickle (runs code in the file); None: as the caller's
            ``trusted_checkpoints`` block says (off by default).

    Raises:
        DataError: the file is missing, not a checkpoint, truncated, holds
            anything but tensors and plain containers (untrusted), or has no state dict.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise DataError(f"checkpoint not found: {path}. Fix: check the path.")
    trust = _trusted.get() if trust is None else trust
    if not trust:
        _refuse_code(path)
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=not trust)
    except Exception as exc:  # noqa: BLE001 - anything torch or the pickle raises is the file's
        raise _unreadable(path, exc) from None
    if isinstance(checkpoint, Mapping) and "model" in checkpoint:
        checkpoint = dict(checkpoint)
    elif isinstance(checkpoint, Mapping):
        checkpoint = {"model": checkpoint}  # a bare state dict
    else:
        raise DataError(
            f"{path}: holds a {type(checkpoint).__name__}, not a checkpoint (a dict with the "
            "model's state dict under 'model'). Fix: point at a checkpoint_*.pth written by "
            "`curate train`."
        )
    state = checkpoint["model"]
    bad = (
        [k for k, v in state.items() if not isinstance(v, torch.Tensor)][:3]
        if isinstance(state, Mapping)
        else None
    )
    if bad is None or bad:
        what = f"entries that are not tensors: {bad}" if bad else f"a {type(state).__name__}"
        raise DataError(
            f"{path}: 'model' is not a state dict (names to tensors); it holds {what}. "
            "Fix: point at a checkpoint_*.pth written by `curate train`."
        )
    return checkpoint


def _refuse_code(path: Path) -> None:
    """Refuse a checkpoint whose pickle names functions or classes outside the safe set."""
    import zipfile

    from torch.serialization import get_unsafe_globals_in_checkpoint

    if not zipfile.is_zipfile(path):
        return  # torch.load says what is wrong with it (legacy format or not a checkpoint)
    try:
        unsafe = get_unsafe_globals_in_checkpoint(str(path))
    except Exception:  # noqa: BLE001 - a damaged archive: torch.load names the problem
        return
    if unsafe:
        raise _code_refused(path, unsafe)


def _code_refused(path: Path, names: list[str]) -> DataError:
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return DataError(
        f"{path}: refused to load: its pickle names {shown}, which loading would import "
        "and call (a checkpoint can run any code this way). Checkpoints written by "
        f"`curate train` hold only tensors and plain values. {TRUST_HINT}"
    )


def _unreadable(path: Path, exc: Exception) -> DataError:
    import pickle
    import zipfile

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    found = re.findall(r"GLOBAL ([\w.]+)", str(exc))
    if isinstance(exc, pickle.UnpicklingError) and found:  # seen only while unpickling
        return _code_refused(path, found)
    with open(path, "rb") as fh:
        head = fh.read(4)
    if not head:
        return DataError(
            f"{path}: is empty (0 bytes), not a checkpoint. Fix: copy the file again from its "
            "run folder."
        )
    if head.startswith(b"PK") and not zipfile.is_zipfile(path):
        what = "is truncated or damaged (a zip archive without its end: a cut-short copy?)"
        fix = "copy the file again from its run folder"
    elif head.startswith(b"PK"):
        what = f"is damaged ({text})"
        fix = "copy the file again from its run folder"
    else:
        what = (
            "is not a PyTorch checkpoint (torch.save writes a zip archive; this file starts "
            f"with {head!r})"
        )
        fix = "point at a checkpoint_*.pth written by `curate train`"
    return DataError(f"{path}: {what}. Fix: {fix}.")


class LoadReport(dict[str, Any]):
    """Missing and unexpected keys of a checkpoint load (never hidden).

    ``missing`` are real mismatches; ``missing_frozen`` are frozen weights LAVIS
    leaves out on purpose; ``tied`` are names of a tensor that was loaded under
    another name (T5's ``encoder.embed_tokens.weight`` is ``shared.weight``).
    """


def load_state(
    model: Any, checkpoint: Mapping[str, Any], path: str | os.PathLike[str]
) -> LoadReport:
    """Load ``checkpoint['model']`` into ``model`` (not strictly) and report what did not match.

    Raises:
        DataError: a tensor whose shape differs from the model's (another preset
            or architecture); nothing is loaded then.
    """
    state = checkpoint["model"]
    own = model.state_dict(keep_vars=True)
    shapes = [
        f"{k}: checkpoint {list(v.shape)}, model {list(own[k].shape)}"
        for k, v in state.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    if shapes:
        raise DataError(
            f"{path} does not fit this model: {len(shapes)} tensor(s) have another shape, "
            f"e.g. {'; '.join(shapes[:3])}. It was written for another preset or architecture. "
            "Fix: use it with the config of the run that wrote it (that run's config.yaml: "
            "predict and eval take it as --config; train as its CONFIG argument)."
        )
    result = model.load_state_dict(state, strict=False)
    frozen = {n for n, p in model.named_parameters(remove_duplicate=False) if not p.requires_grad}
    aliases = _aliases(own)
    tied = [k for k in result.missing_keys if any(a in state for a in aliases.get(k, ()))]
    rest = [k for k in result.missing_keys if k not in set(tied)]
    return LoadReport(
        path=str(path),
        loaded=len(state) - len(result.unexpected_keys),
        missing=[k for k in rest if k not in frozen],
        missing_frozen=[k for k in rest if k in frozen],
        tied=tied,
        unexpected=list(result.unexpected_keys),
    )


def _aliases(state: Mapping[str, Any]) -> dict[str, list[str]]:
    """For each name, the other names of the same tensor (tied weights share their storage)."""
    groups: dict[tuple[Any, ...], list[str]] = {}
    for name, tensor in state.items():
        if tensor.numel() == 0 or tensor.device.type == "meta":
            continue
        key = (
            tensor.untyped_storage().data_ptr(),
            tensor.storage_offset(),
            tuple(tensor.shape),
            tuple(tensor.stride()),
        )
        groups.setdefault(key, []).append(name)
    return {n: [a for a in names if a != n] for names in groups.values() for n in names}


def load_weights(model: Any, path: str | os.PathLike[str], trust: bool | None = None) -> LoadReport:
    """Read ``path`` safely and load its weights into ``model``; report the keys that did not match."""
    return load_state(model, read_checkpoint(path, trust), path)


def require_match(report: Mapping[str, Any], what: str) -> None:
    """Refuse a load with missing (not frozen, not tied) or unexpected keys.

    LAVIS's ``strict=False`` would silently leave those weights random.
    """
    if report["missing"] or report["unexpected"]:
        raise DataError(
            f"{report['path']} does not match the {what}: "
            f"{len(report['missing'])} missing key(s) {report['missing'][:5]}, "
            f"{len(report['unexpected'])} unexpected key(s) {report['unexpected'][:5]}. "
            "Fix: use it with the config of the run that wrote it (that run's config.yaml: "
            "predict and eval take it as --config; train as its CONFIG argument)."
        )
