"""Small file helpers: atomic writes, checksums, and the guards every writer uses.

Every file the toolkit writes goes through ``atomic_write_bytes`` (temp file in
the same folder, then a rename), and every output path a user names goes
through ``refuse_overwriting_inputs`` (and, for export folders,
``check_export_out``) first, so no input is ever replaced by an output. A
``--json`` report path goes through ``check_report_path``, and a file a user
names is read through ``read_user_file`` (regular files only: ``/dev/zero``
never ends, a FIFO never answers).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from curation.errors import UsageError

EXPORT_TOOL = "falldown-curate"


def _umask() -> int:
    """The process umask, read without changing it where Linux allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # no getter elsewhere: set and restore at once
    os.umask(mask)
    return mask


#: the longest output name; its temp name (``.NAME.tmp-PID``) must fit the 255 bytes of NAME_MAX
MAX_NAME_BYTES = 230
MAX_PATH_BYTES = 4000


def check_output_path(path: str | Path, option: str = "the output") -> None:
    """Refuse an output path the file system cannot take, before anything is written.

    Raises:
        UsageError: a NUL byte, a name or path too long, or a parent that is a file.
    """
    text = os.fspath(path)
    fix = f"Fix: give {option} a shorter, plain path."
    if "\0" in text:
        raise UsageError(f"{option} {text!r}: the path holds a NUL byte. {fix}")
    if len(os.fsencode(text)) > MAX_PATH_BYTES:
        raise UsageError(
            f"{option} {text[:60]}...: the path is {len(os.fsencode(text))} bytes long "
            f"(at most {MAX_PATH_BYTES}). {fix}"
        )
    parts = Path(text).parts
    for i, part in enumerate(parts):
        # the last name gets a temp name beside it; the folders above only need to exist
        if len(os.fsencode(part)) > (MAX_NAME_BYTES if i == len(parts) - 1 else 255):
            raise UsageError(
                f"{option} {text[:60]}...: the name {part[:40]}... is "
                f"{len(os.fsencode(part))} bytes long (at most {MAX_NAME_BYTES}). {fix}"
            )
    for parent in Path(os.path.abspath(text)).parents:
        try:
            st = os.stat(parent)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise UsageError(
                f"{option} {text}: {parent} is a file, not a folder. "
                f"Fix: give {option} a path in a folder."
            )
        break


def atomic_write_bytes(path: str | Path, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and a rename.

    A new file gets the mode the umask allows (as ``open`` would give it); a
    replaced file keeps its mode. ``durable=False`` skips the per-file fsync, for
    many small derived files that the caller flushes once (video frames).

    Raises:
        UsageError: ``path`` is a folder, its parent is a file, or it cannot be written.
    """
    check_output_path(path, "the output")
    path = Path(path)
    refuse_replacing_a_special_file(path)
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode) if path.exists() else 0o666 & ~_umask()
        if path.is_dir():
            raise IsADirectoryError(21, "is a folder")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise UsageError(_cannot_write(path, exc)) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)
            fh.write(data)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UsageError(_cannot_write(path, exc)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _cannot_write(path: Path, exc: OSError) -> str:
    try:
        why = "it is a folder" if path.is_dir() else exc.strerror or str(exc)
    except OSError:
        why = exc.strerror or str(exc)
    return f"cannot write {path}: {why}. Fix: give a file path in a folder you can write to."


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


def real_path(path: str | Path) -> Path:
    """``path`` with ``..`` and symlinks resolved (the file a write would really reach)."""
    return Path(os.path.realpath(os.path.abspath(path)))


def same_file(a: str | Path, b: str | Path) -> bool:
    """True when ``a`` and ``b`` are one file: same real path, or same inode (a hard link)."""
    if real_path(a) == real_path(b):
        return True
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def refuse_overwriting_inputs(
    out: str | Path, inputs: Iterable[str | Path], option: str = "the output"
) -> None:
    """Raise ``UsageError`` when writing ``out`` would replace one of ``inputs``.

    Compares real paths (``./a/../s.json`` and symlinks are caught) and
    inode/device (hard links are caught).
    """
    check_output_path(out, option)
    for item in inputs:
        if same_file(out, item):
            raise UsageError(
                f"{option} {out} would overwrite the input {item} (the same file). "
                f"Fix: give {option} another path; inputs are never changed."
            )
    refuse_replacing_a_special_file(Path(out), option)
    refuse_replacing_non_json(Path(out), option)


def is_within(path: Path, folder: Path) -> bool:
    """True when ``path`` is ``folder`` or below it (both already resolved)."""
    return path == folder or folder in path.parents


def project_raw(near: str | Path | None = None) -> Path | None:
    """The ``raw/`` folder of the project the cwd (or ``near``) is in: the nearest ancestor
    with pyproject.toml and raw/. Outputs check both: run from elsewhere, an output path
    inside a project's raw/ is still in it."""
    here = real_path(Path.cwd() if near is None else Path(near))
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "raw").is_dir():
            return folder / "raw"
    return None


def is_our_export(folder: str | Path) -> bool:
    """True when ``folder`` holds a manifest.json written by this tool."""
    try:
        manifest = json.loads((Path(folder) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("tool") == EXPORT_TOOL


def check_export_out(
    out: str | Path, protect: Iterable[str | Path] = (), overwrite: bool = False
) -> None:
    """Refuse an export folder that could lose data; return quietly when ``out`` is safe.

    Refused: ``out`` is a file; ``out`` is, contains or is inside a path in
    ``protect`` (input files, image roots), the project's ``raw/`` folder, or
    the current folder; ``out`` exists with files in it and ``overwrite`` is
    off; ``overwrite`` is on but ``out`` is not an export of this tool.

    Raises:
        UsageError: the reason and the fix.
    """
    check_output_path(out, "--out")
    out = Path(out)
    real = real_path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder. Fix: pick a new folder for --out.")
    guarded: list[tuple[Path, str]] = [(real_path(p), f"the input {p}") for p in protect]
    for raw in dict.fromkeys(r for r in (project_raw(), project_raw(real)) if r is not None):
        guarded.append((raw, f"the project's raw/ folder {raw} (inputs are read-only)"))
    for target, what in guarded:
        if is_within(real, target) or is_within(target, real):
            where = "is" if real == target else "is inside" if target in real.parents else "holds"
            raise UsageError(
                f"--out {out} {where} {what}: an export there could overwrite or delete it. "
                "Fix: pick a new folder for --out, e.g. under exports/."
            )
    cwd = real_path(Path.cwd())
    if is_within(cwd, real):
        raise UsageError(
            f"--out {out} is the current folder (or holds it); an export replaces the whole "
            "folder. Fix: pick a new folder for --out, e.g. exports/NAME."
        )
    try:
        occupied = out.is_dir() and any(out.iterdir())
    except OSError as exc:
        raise UsageError(
            f"--out {out}: cannot read the folder ({exc.strerror}). Fix: pick a new folder."
        ) from None
    if occupied:
        if not overwrite:
            raise UsageError(
                f"{out} already exists and is not empty. Fix: pick a new --out, "
                "or pass --overwrite (its runs/ folder is deleted too)."
            )
        if not is_our_export(out):
            raise UsageError(
                f"--overwrite replaces only an export of this tool, and {out} has no "
                f'manifest.json with "tool": "{EXPORT_TOOL}": it may hold other files. '
                "Fix: pick a new folder for --out, or move the folder away yourself."
            )
        for run in live_runs(out):
            raise UsageError(
                f"--overwrite would delete {run}, where curate train is running now. Fix: "
                "wait for it to finish (or stop it), or pick a new folder for --out."
            )


#: Written into a run folder while ``curate train`` runs in it (its process id).
RUN_LOCK = ".curate-train.pid"


def live_runs(folder: str | Path) -> list[Path]:
    """Run folders under ``folder`` whose ``curate train`` process is still alive."""
    live = []
    for lock in sorted(Path(folder).rglob(RUN_LOCK)):
        try:
            pid = int(lock.read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            continue
        if pid != os.getpid() and pid_alive(pid):
            live.append(lock.parent)
    return live


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OSError, OverflowError, ValueError):
        return False
    return True


def remove_stale_temp_folders(out: str | Path) -> list[Path]:
    """Clean up beside ``out`` after a killed export; return the paths removed or restored.

    ``.{name}.tmp-{pid}`` (a half-written export) is removed. ``.{name}.old-{pid}``
    (the previous export, moved aside just before the new one was renamed in)
    is put back when ``out`` is missing, else removed. Only folders whose
    process is gone are touched; a live run's are left alone.
    """
    out = Path(os.path.abspath(out))
    done: list[Path] = []
    if not out.parent.is_dir():
        return done
    tmp_prefix, old_prefix = f".{out.name}.tmp-", f".{out.name}.old-"
    for path in sorted(out.parent.iterdir()):
        prefix = next((p for p in (tmp_prefix, old_prefix) if path.name.startswith(p)), None)
        pid = path.name[len(prefix) :] if prefix else ""
        if not pid.isdigit() or pid_alive(int(pid)):
            continue
        if prefix == old_prefix and not os.path.lexists(out):
            os.replace(path, out)  # killed between the two renames: the old export comes back
        elif path.is_symlink():
            if prefix == old_prefix:  # an --out that was a link to an export
                path.unlink()
            continue
        elif path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            continue
        done.append(path)
    return done


def path_kind(path: Path, what: str) -> str:
    """ "dir", "file", "missing", or "special" (there, but a FIFO, socket, device or a link
    that loops); a path the system refuses (too long...) is a usage error."""
    try:
        if path.is_dir():
            return "dir"
        if path.is_file():
            return "file"
        return "special" if os.path.lexists(path) and not _dangling(path) else "missing"
    except (OSError, ValueError) as exc:
        shown = (
            str(path)
            if len(str(path)) <= 200
            else f"{str(path)[:200]}... ({len(str(path))} characters)"
        )
        reason = getattr(exc, "strerror", None) or str(exc)
        from curation.errors import UsageError

        raise UsageError(f"{what} {shown}: {reason}. Fix: give a shorter, existing path") from None


def _dangling(path: Path) -> bool:
    """A link whose target is missing (a loop raises ELOOP instead: "special")."""
    try:
        os.stat(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return False


def not_a_file(kind: str) -> str:
    """What ``path_kind``'s answer means where a regular file was wanted."""
    return {
        "dir": "is a folder, not a file",
        "special": "is not a regular file (a FIFO, socket, device or a link that loops)",
    }.get(kind, "not found")


def shell_quote(path: str | Path) -> str:
    """A path as a copy-pasteable shell argument (quoted; ``./`` before a leading ``-``)."""
    import shlex

    text = os.fspath(path)
    if text.startswith("-"):
        text = "./" + text
    return shlex.quote(text)


def refuse_replacing_a_special_file(
    path: Path, option: str = "the output", fix: str | None = None
) -> None:
    """A write renames a temp file over ``path``: refuse when that would replace a link,
    a device (``/dev/null``), a FIFO or a socket instead of writing to it.

    Raises:
        UsageError: ``path`` exists and is not a plain file (or a folder, refused elsewhere).
    """
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError:
        return  # the write itself names the problem
    if stat.S_ISLNK(st.st_mode):
        what = "a symbolic link"
    elif stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
        return
    else:
        what = "a device, FIFO or socket, not a plain file"
    raise UsageError(
        f"{option} {path} is {what}; writing there would replace it. Fix: "
        + (fix or f"give {option} the path of a plain file (a new one, or an earlier output).")
    )


def refuse_replacing_non_json(path: Path, option: str = "the output") -> None:
    """JSON outputs (reports, fixed copies) replace only an existing JSON file.

    Anything else in the way (an image the records use, a text file) is more
    likely a typo than an earlier output.

    Raises:
        UsageError: ``path`` is a file that does not start like JSON.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError):
        return
    except OSError:
        return
    if head[:1] not in (b"[", b"{") and os.path.getsize(path) > 0:
        raise UsageError(
            f"{option} {path} exists and is not a JSON file (an image or other data?); "
            f"it is never replaced. Fix: give {option} a new path, e.g. report.json."
        )


def read_user_file(path: str | Path, what: str, fix: str, *, max_bytes: int | None = None) -> bytes:
    """The bytes of a file a user named; anything but a regular file is refused unread.

    ``/dev/zero`` never ends and a FIFO blocks until someone writes to it, so a
    reader must look before it reads: a device, FIFO, socket or folder is named,
    never read. ``max_bytes`` refuses a file larger than any honest one of its kind.

    Raises:
        UsageError: ``path`` is missing, a folder, not a regular file, unreadable, or
            larger than ``max_bytes``; the message names ``what``, the path and ``fix``.
    """
    path = Path(path)
    kind = path_kind(path, what)
    if kind != "file":
        raise UsageError(f"{what} {path} {not_a_file(kind)}. {fix}")
    try:
        # O_NONBLOCK: a FIFO put in its place since the check above opens without waiting
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise UsageError(f"{what} {path}: cannot read it ({exc.strerror or exc}). {fix}") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"{what} {path} {not_a_file('special')}. {fix}")
        if max_bytes is not None and st.st_size > max_bytes:
            raise UsageError(
                f"{what} {path} is {st.st_size:,} bytes, more than the {max_bytes:,} such a "
                f"file can hold. {fix}"
            )
        try:
            data = fh.read() if max_bytes is None else fh.read(max_bytes + 1)
        except OSError as exc:
            raise UsageError(
                f"{what} {path}: cannot read it ({exc.strerror or exc}). {fix}"
            ) from None
    if max_bytes is not None and len(data) > max_bytes:  # it grew while being read
        raise UsageError(f"{what} {path} is more than {max_bytes:,} bytes. {fix}")
    return data


def check_report_path(path: Path, command: str, report_keys: Iterable[str], fix: str) -> None:
    """A ``--json`` report goes to a new file or replaces an earlier report of ``command``.

    An existing file is replaced only when it is a JSON object holding every key
    of ``report_keys``; reading it is bounded like any user file, and one nested
    too deeply (``json`` recurses) or of any other shape is simply not a report.

    Raises:
        UsageError: a folder, a device/FIFO/socket, a path the system refuses, or an
            existing file that is not such a report.
    """
    kind = path_kind(path, "--json")
    if kind == "dir":
        raise UsageError(f"--json {path} is a folder; the report is one JSON file. {fix}")
    if kind == "special":
        refuse_replacing_a_special_file(path, "--json", fix.removeprefix("Fix: "))
        raise UsageError(f"--json {path} {not_a_file(kind)}. {fix}")  # a link that loops
    check_output_path(path, "--json")
    if kind != "file":
        return
    refuse_replacing_non_json(path, "--json")
    try:
        old = json.loads(read_user_file(path, "--json", fix).decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        old = None
    if not (isinstance(old, dict) and set(old) >= set(report_keys)):
        raise UsageError(
            f"--json {path} exists and is not a curate {command} report; refusing to "
            f"overwrite it. {fix}"
        )
