"""The hostile-input harness: run a command, then check the documented promises.

Every hostile test does the same three things:

1. snapshot the bytes, modes and link targets of every input (``tree_state``),
2. run the command (``invoke``: in-process through typer's CliRunner, so an
   escaping exception is seen as an exception, not as text),
3. ``expect`` the exit code the docs promise, the problem named in the
   message, no traceback, and ``untouched`` inputs (nothing outside ``--out``
   created, changed or removed).
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from curation.cli import app

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Outcome:
    """What a command did: exit code, everything it printed, an escaping exception."""

    args: list[str]
    exit_code: int
    output: str
    exception: BaseException | None

    def __str__(self) -> str:  # shown by pytest when an assertion fails
        return f"curate {' '.join(self.args)} -> exit {self.exit_code}\n{self.output}"


def invoke(
    args: Sequence[str | os.PathLike[str]],
    cwd: Path | None = None,
    input: str | None = None,
    env: dict[str, str] | None = None,
) -> Outcome:
    """Run ``curate ARGS`` in this process (optionally from ``cwd``)."""
    argv = [os.fspath(a) for a in args]
    old = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        result = CliRunner().invoke(app, argv, input=input, env=env, terminal_width=200)
    finally:
        os.chdir(old)
    exc = result.exception
    if isinstance(exc, SystemExit):
        exc = None
    output = result.output
    try:  # click < 8.2 keeps stderr apart only when asked; 8.2+ always mixes it into output
        stderr = result.stderr
    except (ValueError, AttributeError):
        stderr = ""
    if stderr and stderr not in output:
        output += stderr
    return Outcome(argv, result.exit_code, output, exc)


def invoke_process(
    args: Sequence[str | os.PathLike[str]],
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> Outcome:
    """Run ``curate ARGS`` as a real process (when signals, cwd or the interpreter matter)."""
    argv = [os.fspath(a) for a in args]
    proc = subprocess.run(
        [sys.executable, "-c", "from curation.cli import app; app()", *argv],
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Outcome(argv, proc.returncode, proc.stdout + proc.stderr, None)


def expect(outcome: Outcome, code: int, *needles: str) -> None:
    """The promised exit code, each needle in the message, and never a traceback."""
    assert outcome.exception is None, f"an exception escaped: {outcome.exception!r}\n{outcome}"
    assert "Traceback (most recent call last)" not in outcome.output, str(outcome)
    assert outcome.exit_code == code, str(outcome)
    for needle in needles:
        assert needle in outcome.output, f"{needle!r} not in the message\n{outcome}"


def _entry(path: Path) -> tuple[int, tuple[str, ...]]:
    st = path.lstat()
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISLNK(st.st_mode):
        return mode, ("link", os.readlink(path))
    if stat.S_ISREG(st.st_mode):
        return mode, ("file", hashlib.sha256(path.read_bytes()).hexdigest())
    if stat.S_ISDIR(st.st_mode):
        return mode, ("dir",)
    return mode, ("other",)


def tree_state(*roots: Path) -> dict[str, tuple[int, tuple[str, ...]]]:
    """Every path under ``roots`` (links not followed) with its mode and content hash."""
    state: dict[str, tuple[int, tuple[str, ...]]] = {}
    for root in roots:
        if not os.path.lexists(root):
            continue
        state[str(root)] = _entry(root)
        if root.is_symlink() or not root.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            for name in dirnames + filenames:
                p = Path(dirpath) / name
                state[str(p)] = _entry(p)
    return state


@contextmanager
def untouched(*roots: Path, allow: Iterable[Path] = ()) -> Iterator[None]:
    """Assert nothing under ``roots`` is created, changed or removed, except under ``allow``."""
    allowed = [str(a) for a in allow]

    def keep(path: str) -> bool:
        return not any(path == a or path.startswith(a.rstrip("/") + "/") for a in allowed)

    before = {k: v for k, v in tree_state(*roots).items() if keep(k)}
    yield
    after = {k: v for k, v in tree_state(*roots).items() if keep(k)}
    created = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    assert not (created or removed or changed), (
        f"inputs touched: created {created[:10]}, removed {removed[:10]}, changed {changed[:10]}"
    )


def trained_export(folder: Path, epochs: int) -> Path:
    """The bundled sample exported into ``folder/ex`` and trained ``epochs`` epochs as run r1."""
    sample = REPO / "raw" / "sample"
    out = folder / "ex"
    expect(invoke(["export", "--task", sample / "annotations.json", "--out", out]), 0)
    expect(invoke(["train", out / "lavis.yaml", f"run.max_epoch={epochs}", "--run-id", "r1"]), 0)
    return out


def sample_export(tmp_path: Path) -> Path:
    """The bundled sample exported (tiny preset, seed 0) into ``tmp_path/sample``; not trained."""
    from curation.export import ExportOptions, export_task

    sample = REPO / "raw" / "sample"
    out = tmp_path / "sample"
    export_task(sample / "annotations.json", sample, out, ExportOptions(seed=0, model="tiny"))
    return out


def unique(name: str) -> str:
    """A dataset name no other test (or earlier run against the same database) uses."""
    import uuid

    return f"{name}-{uuid.uuid4().hex[:8]}"
