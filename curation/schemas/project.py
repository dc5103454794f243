"""Project settings a team shares: ``curate.yaml`` (today: which MongoDB the curator uses)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from curation.errors import ConfigError

#: The project settings file, looked up in the current folder and then its parents.
PROJECT_FILE = "curate.yaml"
_EXAMPLE = (
    "database_uri: mongodb://curator:PASSWORD@db.example.org:27017/?authSource=admin\n"
    "database_name: falls"
)


class ProjectSettings(BaseModel):
    """What ``curate.yaml`` may hold."""

    model_config = ConfigDict(extra="forbid")
    database_uri: str | None = Field(
        default=None, description="MongoDB server every curator command uses (mongodb://...)."
    )
    database_name: str | None = Field(
        default=None, min_length=1, description="MongoDB database FiftyOne keeps its data in."
    )


def find_project_file(start: str | Path | None = None) -> Path | None:
    """The nearest ``curate.yaml``: in ``start`` (default: the current folder) or a parent."""
    folder = Path(start if start is not None else Path.cwd()).resolve()
    for candidate in (folder, *folder.parents):
        path = candidate / PROJECT_FILE
        if path.is_file():
            return path
    return None


def load_project_settings(path: str | Path) -> ProjectSettings:
    """Read ``curate.yaml``; a problem names the file, the key and the fix."""
    path = Path(path)
    from curation._yaml import read_yaml

    data = read_yaml(path, f"Fix: write it as\n{_EXAMPLE}")
    if data is None:
        return ProjectSettings()
    try:
        return ProjectSettings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'the file'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}. Fix: only these keys, e.g.\n{_EXAMPLE}") from None
