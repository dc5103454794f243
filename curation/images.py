"""Image file checks: exists, decodes fully, not empty, not tiny. Run in parallel."""

from __future__ import annotations

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


def check_image(path: Path) -> ImageIssue | None:
    """Open and fully decode one image; return what is wrong with it, or None."""
    from PIL import Image, UnidentifiedImageError

    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return ImageIssue(
            "image_missing",
            f"file not found: {path}",
            "check the path and --image-root (paths are relative to the image root).",
        )
    if not path.is_file():
        return ImageIssue("image_missing", f"not a file: {path}", "point 'image' at a file.")
    if size == 0:
        return ImageIssue("image_empty", f"empty file (0 bytes): {path}", "re-copy the image.")
    try:
        with Image.open(path) as im:
            im.load()  # full decode: catches truncated files that verify() lets through
            width, height = im.size
    except UnidentifiedImageError:
        return ImageIssue(
            "image_undecodable", f"not a readable image: {path}", "replace or remove the file."
        )
    except (OSError, SyntaxError, ValueError) as exc:
        return ImageIssue(
            "image_corrupt",
            f"image is corrupt or truncated ({exc}): {path}",
            "re-export or remove the file.",
        )
    if min(width, height) < TINY_SIDE:
        return ImageIssue(
            "image_tiny",
            f"image is only {width}x{height} px: {path}",
            f"use images at least {TINY_SIDE} px on each side.",
            severity="warning",
        )
    return None


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
