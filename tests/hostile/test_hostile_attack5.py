"""Attack round 5: operating points, find-issues and the shared database, as a hostile user."""

from __future__ import annotations

import os
import resource
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from _harness import expect, invoke, untouched

from curation.synthetic import render_scene


def _checkpoint_beside(tmp_path: Path, what: str) -> tuple[Path, Path]:
    """A (fake) checkpoint with ``operating_point.json`` beside it made ``what``; an image."""
    run = tmp_path / "run"
    run.mkdir()
    ckpt = run / "checkpoint_0.pth"
    ckpt.write_bytes(b"x")
    (run / "config.yaml").write_text("model: {}\n")
    point = run / "operating_point.json"
    if what == "dev-zero":
        point.symlink_to("/dev/zero")
    elif what == "fifo":
        os.mkfifo(point)
    elif what == "huge":
        with open(point, "wb") as fh:
            fh.write(b'{"threshold": 0.5, "pad": "')
            fh.truncate(64 << 20)  # sparse: 64 MiB of NULs after the opening
    image = tmp_path / "img.png"
    render_scene(True, 1, 40).save(image)
    return ckpt, image


@contextmanager
def bounded(seconds: int = 60, extra_bytes: int = 2 << 30) -> Iterator[None]:
    """Fail (not hang, not fill the machine's memory) when the code under test would."""

    def late(*_: object) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as fh:
        used = int(fh.read().split()[0]) * resource.getpagesize()
    limit = used + extra_bytes if hard == resource.RLIM_INFINITY else min(hard, used + extra_bytes)
    old = signal.signal(signal.SIGALRM, late)
    signal.alarm(seconds)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize(
    ("what", "needle"),
    [
        ("dev-zero", "not a regular file"),
        ("fifo", "not a regular file"),
        ("huge", "larger than"),
    ],
)
def test_an_operating_point_that_is_not_a_small_file_is_refused(
    tmp_path: Path, what: str, needle: str
) -> None:
    """Before: /dev/zero filled memory (MemoryError traceback), a FIFO blocked forever."""
    ckpt, image = _checkpoint_beside(tmp_path, what)
    with untouched(tmp_path), bounded():
        outcome = invoke(["predict", ckpt, image, "--json"])
    expect(outcome, 1, "operating_point.json", needle, "--threshold")
