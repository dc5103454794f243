"""Near copies: images whose 64-bit perceptual hashes differ in a few bits, and videos
that are copies of each other.

One rule for ``curate check`` (its ``dup:near`` groups) and for the splitter
(``curation.split``: export and mix keep near copies in one split). Two photos
are near copies when their hashes are within ``hamming`` bits. Two frames of
*different* videos are near copies only when their videos are copies of each
other (``video_copies``): a fixed camera makes frames of different people look
alike to a 64-bit hash, and frame pairs alone would join every clip of a camera.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: A video is a copy of another when at least this share of its frames (of the one with
#: fewer frames) has a near copy in the other at the same moment of the footage, once the
#: two are lined up (``video_copies``).
VIDEO_COPY_SHARE = 2 / 3


def hamming_pairs(hashes: list[int], threshold: int) -> list[tuple[int, int]]:
    """Index pairs whose 64-bit hashes differ in at most ``threshold`` bits (numpy, chunked)."""
    import numpy as np

    if len(hashes) < 2:
        return []
    h = np.array(hashes, dtype=np.uint64)
    pairs: list[tuple[int, int]] = []
    m1, m2, m4 = (
        np.uint64(0x5555555555555555),
        np.uint64(0x3333333333333333),
        np.uint64(0x0F0F0F0F0F0F0F0F),
    )
    h01 = np.uint64(0x0101010101010101)
    for start in range(0, len(h), 256):
        x = h[start : start + 256, None] ^ h[None, :]
        x = x - ((x >> np.uint64(1)) & m1)
        x = (x & m2) + ((x >> np.uint64(2)) & m2)
        x = (x + (x >> np.uint64(4))) & m4
        bits = (x * h01) >> np.uint64(56)
        rows, cols = np.nonzero(bits <= threshold)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            if start + r < c:
                pairs.append((start + r, c))
    return pairs


def _bits(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def video_copies(
    pairs: list[tuple[int, int]],
    videos: Sequence[str | None],
    times: Sequence[Any] | None,
    hashes: Sequence[int],
    hamming: int,
) -> set[frozenset[str]]:
    """Pairs of videos that are copies of each other (a re-encode, a trimmed copy, another
    folder's copy).

    A copy of a clip matches it moment by moment, perhaps shifted in time (a copy
    that starts later, a cut head). So the videos are lined up at each time shift that
    one of their near frame pairs suggests (the other's frame time minus this one's);
    at a shift, each frame of the video with fewer frames is compared with the other's
    frame nearest to its time plus the shift (within half a frame interval). The videos
    are copies when, at the best shift, at least ``VIDEO_COPY_SHARE`` of those frames are
    within ``hamming`` bits. Different clips of one camera match at scattered shifts,
    never most of their frames at one. Only video pairs with near frame pairs among
    ``pairs`` are compared.
    """
    if times is None:
        return set()
    frames: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for i, (video, t) in enumerate(zip(videos, times, strict=True)):
        if video is not None and t is not None:
            frames[video].append((float(t), i))
    for found in frames.values():
        found.sort()

    spacing: dict[str, float] = {}
    for video, found in frames.items():
        gaps = [b[0] - a[0] for a, b in zip(found, found[1:], strict=False) if b[0] > a[0]]
        spacing[video] = statistics.median(gaps) if gaps else math.inf
    time_of = {i: t for found in frames.values() for t, i in found}
    # the near frame pairs of each video pair: a pair can only be copies when enough of
    # the shorter one's frames have one somewhere in the other
    touched: dict[frozenset[str], list[tuple[int, int]]] = defaultdict(list)
    for a, b in pairs:
        va, vb = videos[a], videos[b]
        if va is not None and vb is not None and va != vb and a in time_of and b in time_of:
            touched[frozenset((va, vb))].append((a, b))
    copies: set[frozenset[str]] = set()
    for pair, near in touched.items():
        short, long = sorted(pair, key=lambda v: (len(frames[v]), v))
        need = VIDEO_COPY_SHARE * len(frames[short])
        if len({a if videos[a] == short else b for a, b in near}) < need:
            continue
        tol = min(spacing[short], spacing[long], 1.0) / 2
        other = [t for t, _ in frames[long]]
        shifts = set()
        for a, b in near:
            i, j = (a, b) if videos[a] == short else (b, a)
            shifts.add(time_of[j] - time_of[i])
        for shift in sorted(shifts, key=lambda s: (abs(s), s)):  # no shift first
            if _matched(frames[short], frames[long], other, shift, tol, hashes, hamming) >= need:
                copies.add(pair)
                break
    return copies


def _matched(
    short: list[tuple[float, int]],
    long: list[tuple[float, int]],
    other: list[float],
    shift: float,
    tol: float,
    hashes: Sequence[int],
    hamming: int,
) -> int:
    """How many of ``short``'s frames are within ``hamming`` bits of ``long``'s frame
    nearest to their time plus ``shift``."""
    matched = 0
    for t, i in short:
        at = t + shift
        k = bisect.bisect_left(other, at)
        near = [j for j in (k - 1, k) if 0 <= j < len(other) and abs(other[j] - at) <= tol + 1e-9]
        if near:
            j = long[min(near, key=lambda j: abs(other[j] - at))][1]
            matched += _bits(hashes[i], hashes[j]) <= hamming
    return matched


def near_copy_pairs(
    hashes: Sequence[int],
    videos: Sequence[str | None],
    times: Sequence[Any] | None,
    hamming: int,
) -> list[tuple[int, int]]:
    """Index pairs that are near copies: hashes within ``hamming`` bits, and for two frames
    of different videos, videos that are copies of each other (``video_copies``)."""
    pairs = hamming_pairs(list(hashes), hamming)
    copies = video_copies(pairs, videos, times, hashes, hamming)
    return [
        (a, b)
        for a, b in pairs
        if videos[a] is None
        or videos[b] is None
        or videos[a] == videos[b]
        or frozenset((videos[a], videos[b])) in copies
    ]


def image_hash(path: Path) -> int | None:
    """The 64-bit perceptual hash of an image as the toolkit's loaders see it (EXIF
    orientation applied), as ``curate ingest`` stores it; None when it cannot be read."""
    from curation.images import scan_image

    scan = scan_image(path)
    return int(scan.phash, 16) if scan.phash else None
