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
from typing import Any

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


#: Above this many pixels an image is refused as a decompression bomb (PIL's own limit).
MAX_PIXELS = 89_478_485


def open_rgb(path: str | os.PathLike[str]) -> Any:
    """Open an image the way every command must see it, as a fully decoded RGB ``PIL.Image``.

    EXIF orientation is applied (a standing person stored rotated must not look
    like one lying down), 16-bit greyscale is scaled to 8 bits instead of clipped
    to white, truncated files and decompression bombs are refused.

    Raises:
        DataError: the file is missing, not an image, truncated or too large.
    """
    import warnings

    from PIL import Image, ImageOps, UnidentifiedImageError

    from curation.errors import DataError

    path = Path(path)
    try:
        with _truncated_images_rejected(), warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise Image.DecompressionBombError(f"{im.width}x{im.height} pixels")
                im.load()
                out = ImageOps.exif_transpose(im) or im
                out = _to_rgb(out)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DataError(
            f"{path}: image is too large to open safely ({exc}; limit {MAX_PIXELS:,} pixels). "
            "Fix: resize it, or remove it."
        ) from None
    except FileNotFoundError:
        raise DataError(f"{path}: file not found. Fix: check the path.") from None
    except UnidentifiedImageError:
        raise DataError(f"{path}: not a readable image. Fix: replace or remove the file.") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(
            f"{path}: image is corrupt or truncated ({exc}). Fix: re-export or remove the file."
        ) from None
    return out


def _to_rgb(im: Any) -> Any:
    """RGB, with 16- and 32-bit greyscale scaled down rather than clipped."""
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        im = im.convert("I") if im.mode != "I" else im
        _, high = im.getextrema()
        if high > 255:
            scale = 255 / (65535 if high <= 65535 else high)
            im = im.point(lambda v: v * scale)
        im = im.convert("L")
    elif im.mode == "F":
        low, high = im.getextrema()
        span = (high - low) or 1.0
        im = im.point(lambda v: (v - low) * 255 / span).convert("L")
    return im.convert("RGB") if im.mode != "RGB" else im.copy()
