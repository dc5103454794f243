"""The image files a validated annotation file names: present, readable, inside the image root."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

from curation._fastpath import Columns
from curation.images import escapes_root, fingerprint_images, name_form_mismatch
from curation.report import Problem, Severity, ValidationReport
from curation.schemas.annotation import image_path_problem


def check_images(
    path: Path, cols: Columns, root: Path, workers: int | None, report: ValidationReport
) -> tuple[int, dict[str, str]]:
    """Open each distinct image once; return how many, and each image's sha256."""
    first: dict[str, int] = {}
    for pos, rel in enumerate(cols.image):
        if rel not in first and image_path_problem(rel) is None:
            first[rel] = pos
    file = str(path)

    def add(pos: int, code: str, message: str, fix: str, severity: Severity = "error") -> None:
        report.add(
            Problem(
                file,
                code,
                message,
                fix,
                severity,
                cols.index[pos],
                cols.instance_id[pos],
                "image",
            )
        )

    inside: dict[str, int] = {}
    for rel, pos in first.items():
        target = escapes_root(root, root / rel)
        if target is None:
            inside[rel] = pos
            continue
        add(
            pos,
            "image_outside_root",
            f"{json.dumps(rel)} is a link to {target}, outside the image root {root}; "
            "it was not opened.",
            "copy the file into the image root (or pass --image-root a folder that holds it).",
        )
    scans = fingerprint_images((root / rel for rel in inside), workers)
    sha_by_image: dict[str, str] = {}
    for rel, pos in inside.items():
        scan = scans[root / rel]
        if scan.sha256:
            sha_by_image[rel] = scan.sha256
        issue = scan.issue
        if issue is None:
            continue
        if issue.code == "image_missing" and (on_disk := name_form_mismatch(root / rel)):
            form = "NFC" if unicodedata.is_normalized("NFC", rel) else "NFD"
            disk = "NFD" if form == "NFC" else "NFC"
            add(
                pos,
                "image_name_form",
                f"{json.dumps(rel)} not found as written ({form}), but the folder has "
                f"{json.dumps(on_disk, ensure_ascii=False)}: the same name in Unicode {disk} "
                "form (other bytes; macOS and some zip tools write decomposed names).",
                f"rename the file to the {form} form (convmv --{form.lower()}), or write the "
                "path as it is on disk.",
            )
            continue
        add(pos, issue.code, issue.message, issue.fix, issue.severity)
    return len(first), sha_by_image
