"""Image file checks: exists, decodes fully, not empty, not tiny. Run in parallel."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

#: Smaller than this on either side gets a warning (BLIP-2 upsamples it to 224 px).
TINY_SIDE = 32


@dataclass(frozen=True, slots=True)
class ImageIssue:
    code: str
    message: str
    fix: str
    severity: str = "error"


@dataclass(frozen=True, slots=True)
class ImageScan:
    """One image read once: what is wrong with it, and its hashes (for the curator)."""

    issue: ImageIssue | None
    sha256: str = ""
    phash: str = ""


def check_image(path: Path) -> ImageIssue | None:
    """Open and fully decode one image; return what is wrong with it, or None."""
    return _inspect(path, hashes=False).issue


def scan_image(path: Path) -> ImageScan:
    """Check one image and hash it (sha256 of the bytes, 64-bit phash), reading it once."""
    return _inspect(path, hashes=True)


def _inspect(path: Path, hashes: bool) -> ImageScan:  # noqa: C901 - one linear pass
    from PIL import Image, UnidentifiedImageError

    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return ImageScan(
            ImageIssue(
                "image_missing",
                f"file not found: {path}",
                "check the path and --image-root (paths are relative to the image root).",
            )
        )
    if not path.is_file():
        return ImageScan(
            ImageIssue("image_missing", f"not a file: {path}", "point 'image' at a file.")
        )
    if size == 0:
        return ImageScan(
            ImageIssue("image_empty", f"empty file (0 bytes): {path}", "re-copy the image.")
        )
    sha, phash = "", ""
    try:
        data = path.read_bytes() if hashes else None
        with Image.open(io.BytesIO(data) if data is not None else path) as im:
            im.load()  # full decode: catches truncated files that verify() lets through
            width, height = im.size
            if data is not None:
                import imagehash

                sha = hashlib.sha256(data).hexdigest()
                phash = str(imagehash.phash(im))
    except UnidentifiedImageError:
        return ImageScan(
            ImageIssue(
                "image_undecodable", f"not a readable image: {path}", "replace or remove the file."
            )
        )
    except (OSError, SyntaxError, ValueError) as exc:
        return ImageScan(
            ImageIssue(
                "image_corrupt",
                f"image is corrupt or truncated ({exc}): {path}",
                "re-export or remove the file.",
            )
        )
    if min(width, height) < TINY_SIDE:
        return ImageScan(
            ImageIssue(
                "image_tiny",
                f"image is only {width}x{height} px: {path}",
                f"use images at least {TINY_SIDE} px on each side.",
                severity="warning",
            ),
            sha,
            phash,
        )
    return ImageScan(None, sha, phash)


def check_images(
    paths: Iterable[Path], workers: int | None = None
) -> dict[Path, ImageIssue | None]:
    """Check many images in a thread pool (PIL releases the GIL while decoding)."""
    unique = list(dict.fromkeys(paths))
    workers = workers or min(32, (os.cpu_count() or 1) * 2)
    with _truncated_images_rejected():
        if len(unique) < 16 or workers == 1:
            return {p: check_image(p) for p in unique}
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return dict(zip(unique, pool.map(check_image, unique, chunksize=64), strict=True))


def scan_images(paths: Iterable[Path], processes: int | None = None) -> dict[Path, ImageScan]:
    """Check and hash many images in worker processes (hashing is CPU-bound Python)."""
    unique = list(dict.fromkeys(paths))
    processes = processes or os.cpu_count() or 1
    if len(unique) < 200 or processes == 1:
        with _truncated_images_rejected():
            return {p: scan_image(p) for p in unique}
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=processes, initializer=_reject_truncated) as pool:
        return dict(zip(unique, pool.map(scan_image, unique, chunksize=256), strict=True))


def _reject_truncated() -> None:
    from PIL import ImageFile

    ImageFile.LOAD_TRUNCATED_IMAGES = False


@contextmanager
def _truncated_images_rejected() -> Iterator[None]:
    """LAVIS sets PIL's global LOAD_TRUNCATED_IMAGES = True at import; checks need it off."""
    from PIL import ImageFile

    old = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = old
