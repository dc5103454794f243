"""Problems found in data, collected in one pass and reported together."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from curation._io import atomic_write_text

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem: where it is (file, record, field), what it is, and the fix."""

    file: str
    code: str
    message: str
    fix: str = ""
    severity: Severity = "error"
    index: int | None = None
    instance_id: int | str | None = None
    field: str | None = None

    def where(self) -> str:
        """Human location, e.g. ``train.json record #1 (instance_id=1)``."""
        parts = [Path(self.file).name]
        if self.index is not None:
            rec = f"record #{self.index}"
            if self.instance_id is not None:
                rec += f" (instance_id={self.instance_id})"
            parts.append(rec)
        return " ".join(parts)

    def render(self) -> str:
        """One line in the style ``file record #i (id): field: message. Fix: ...``."""
        head = self.where()
        body = f"{self.field}: {self.message}" if self.field else self.message
        text = f"{head}: {body}"
        if self.fix:
            text += f" Fix: {self.fix}"
        return text


@dataclass
class ValidationReport:
    """Everything ``validate`` found across one or more files."""

    files: list[str] = field(default_factory=list)
    records: int = 0
    images_checked: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings are allowed)."""
        return not self.errors

    def counts_by_code(self) -> dict[str, int]:
        return dict(Counter(p.code for p in self.problems).most_common())

    def summary(self) -> str:
        n_err, n_warn = len(self.errors), len(self.warnings)
        verdict = "valid" if self.ok else "INVALID"
        return (
            f"{verdict}: {len(self.files)} file(s), {self.records} record(s), "
            f"{self.images_checked} image(s) checked, {n_err} error(s), {n_warn} warning(s)"
        )

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "files": self.files,
            "records": self.records,
            "images_checked": self.images_checked,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "counts_by_code": self.counts_by_code(),
            "problems": [asdict(p) for p in self.problems],
        }

    def write_json(self, path: str | Path) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")
