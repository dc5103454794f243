"""Image file checks: exists, decodes fully, not empty, not tiny. Run in parallel."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

#: Smaller than this on either side gets a warning (BLIP-2 upsamples it to 224 px).
TINY_SIDE = 32


@dataclass(frozen=True, slots=True)
class ImageIssue:
    code: str
    message: str
    fix: str
    severity: Literal["error", "warning"] = "error"


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
    """Check one image and hash it (sha256 of the bytes, 64-bit phash), reading it once.

    The phash is taken of the image as the toolkit's loaders see it (``open_rgb``:
    EXIF orientation applied, 16-bit scaled), so a rotated copy hashes like the original.
    """
    return _inspect(path, hashes=True)


def fingerprint_image(path: Path) -> ImageScan:
    """Check one image and take the sha256 of its bytes (no phash), reading it once."""
    return _inspect(path, hashes=False, sha=True)


_16_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
_EXIF_ORIENTATION = 0x0112


def _missing(path: Path, exc: OSError | ValueError) -> ImageIssue:
    if isinstance(exc, NotADirectoryError):
        parent = next((p for p in path.parents if p.is_file()), path.parent)
        return ImageIssue(
            "image_missing",
            f"{parent} is a file, not a folder, so {path} cannot exist",
            "point 'image' at the file itself (check for a stray '/name' after it).",
        )
    if isinstance(exc, FileNotFoundError):
        return ImageIssue(
            "image_missing",
            f"file not found: {path}",
            "check the path and --image-root (paths are relative to the image root).",
        )
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return ImageIssue(
        "image_missing", f"cannot read {path}: {reason}", "check the path and its permissions."
    )


def _inspect(path: Path, hashes: bool, sha: bool = False) -> ImageScan:  # noqa: C901, PLR0911
    import warnings

    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        size = path.stat().st_size
        is_file = path.is_file()
    except (OSError, ValueError) as exc:
        return ImageScan(_missing(path, exc))
    if not is_file:
        return ImageScan(
            ImageIssue("image_missing", f"not a file: {path}", "point 'image' at a file.")
        )
    if size == 0:
        return ImageScan(
            ImageIssue("image_empty", f"empty file (0 bytes): {path}", "re-copy the image.")
        )
    digest, phash, mode, oriented = "", "", "", 1
    try:
        data = path.read_bytes() if (hashes or sha) else None
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data) if data is not None else path) as im:
                width, height = im.size
                if width * height > MAX_PIXELS:  # refuse before decoding, not after
                    raise Image.DecompressionBombError(f"{width}x{height} pixels")
                im.load()  # full decode: catches truncated files that verify() lets through
                mode = im.mode
                oriented = im.getexif().get(_EXIF_ORIENTATION, 1)
                if data is not None:
                    digest = hashlib.sha256(data).hexdigest()
                if hashes:
                    import imagehash

                    phash = str(imagehash.phash(_to_rgb(ImageOps.exif_transpose(im) or im)))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return ImageScan(
            ImageIssue(
                "image_too_large",
                f"image is too large to open safely ({exc}; limit {MAX_PIXELS:,} pixels): {path}",
                "resize it, or remove it (a file this size is likely a decompression bomb).",
            )
        )
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
    issue = None
    if min(width, height) < TINY_SIDE:
        issue = ImageIssue(
            "image_tiny",
            f"image is only {width}x{height} px: {path}",
            f"use images at least {TINY_SIDE} px on each side.",
            severity="warning",
        )
    elif mode in _16_BIT:
        issue = ImageIssue(
            "image_16bit",
            f"16-bit greyscale image (mode {mode}): this toolkit's loaders (images.open_rgb) "
            f"scale it to 8 bits, but LAVIS's own loader (PIL convert('RGB')) and most other "
            f"tools clip it to nearly white: {path}",
            "convert it to 8-bit RGB before training or evaluating with other tools.",
            severity="warning",
        )
    elif oriented not in (1, None):
        issue = ImageIssue(
            "image_exif_rotated",
            f"EXIF orientation {oriented}: the pixels are stored rotated or mirrored. This "
            f"toolkit's loaders (images.open_rgb) turn it upright, but LAVIS and other tools "
            f"that ignore EXIF see it turned (a standing person can look like one lying "
            f"down): {path}",
            "save it upright without the orientation tag (e.g. PIL ImageOps.exif_transpose).",
            severity="warning",
        )
    return ImageScan(issue, digest, phash)


def check_images(
    paths: Iterable[Path], workers: int | None = None
) -> dict[Path, ImageIssue | None]:
    """Check many images in a thread pool (PIL releases the GIL while decoding)."""
    return {p: scan.issue for p, scan in fingerprint_images(paths, workers).items()}


def fingerprint_images(paths: Iterable[Path], workers: int | None = None) -> dict[Path, ImageScan]:
    """Check many images and take each one's sha256, in a thread pool (no phash)."""
    unique = list(dict.fromkeys(paths))
    workers = workers or min(32, (os.cpu_count() or 1) * 2)
    with _truncated_images_rejected():
        if len(unique) < 16 or workers == 1:
            return {p: fingerprint_image(p) for p in unique}
        with ThreadPoolExecutor(max_workers=workers) as pool:
            scans = pool.map(fingerprint_image, unique, chunksize=64)
            return dict(zip(unique, scans, strict=True))


def escapes_root(root: Path, path: Path) -> str | None:
    """The real path ``path`` leads to when a link takes it outside ``root``, else None."""
    real_root = os.path.realpath(root)
    try:
        real = os.path.realpath(path)
    except (OSError, ValueError):
        return None  # unreadable paths are reported when the image is opened
    if real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep):
        return None
    return real


def name_form_mismatch(path: Path) -> str | None:
    """The name on disk when ``path`` is missing only because of its Unicode form (NFC/NFD)."""
    import unicodedata

    name = path.name
    if name.isascii():
        return None
    want = unicodedata.normalize("NFC", name)
    try:
        names = os.listdir(path.parent)
    except (OSError, ValueError):
        return None
    return next((n for n in names if n != name and unicodedata.normalize("NFC", n) == want), None)


#: How many image paths ``default_image_root`` tries before it decides.
_ROOT_SAMPLE = 20


def default_image_root(annotation_file: str | os.PathLike[str], image_paths: Any = None) -> Path:
    """The image root when none is given: the one rule validate, export and eval share.

    The annotation file's folder, unless that folder has an ``images/`` sub-folder
    (the layout ``curate export`` writes) and more of the file's first image paths
    exist under ``images/`` than beside the file. ``image_paths`` are the file's
    image paths when the caller has them; otherwise the file is read.
    """
    folder = Path(annotation_file).parent
    images = folder / "images"
    if not images.is_dir():
        return folder
    if image_paths is None:
        image_paths = _image_paths_of(Path(annotation_file))
    sample = [p for p in list(image_paths)[:_ROOT_SAMPLE] if isinstance(p, str)]

    def found(base: Path) -> int:
        n = 0
        for rel in sample:
            with suppress(OSError, ValueError):
                n += (base / rel).is_file()
        return n

    return images if found(images) > found(folder) else folder


def _image_paths_of(path: Path) -> list[Any]:
    import msgspec

    try:
        records = msgspec.json.decode(path.read_bytes().removeprefix(b"\xef\xbb\xbf"))
    except (OSError, msgspec.DecodeError, RecursionError):
        return []
    if not isinstance(records, list):
        return []
    return [r.get("image") for r in records[:_ROOT_SAMPLE] if isinstance(r, dict)]


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


def open_rgb(path: str | os.PathLike[str] | Any, name: str | None = None) -> Any:
    """Open an image the way every command must see it, as a fully decoded RGB ``PIL.Image``.

    ``path`` may also be an open binary file (an upload the server holds in memory);
    ``name`` is what messages then call it.

    EXIF orientation is applied (a standing person stored rotated must not look
    like one lying down), 16-bit greyscale is scaled to 8 bits instead of clipped
    to white, truncated files and decompression bombs are refused.

    Raises:
        DataError: the file is missing, not an image, truncated or too large.
    """
    import warnings

    from PIL import Image, ImageOps, UnidentifiedImageError

    from curation.errors import DataError

    source = path if hasattr(path, "read") else Path(path)
    path = name if name is not None else source
    try:
        with _truncated_images_rejected(), warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as im:
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
