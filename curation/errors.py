"""One exception tree for the whole toolkit.

The library raises these; the CLI maps them to exit codes
(``DataError`` -> 1, ``UsageError`` -> 2). Nothing here prints.
"""

from __future__ import annotations

from types import ModuleType


class CurationError(Exception):
    """Base of every error the toolkit raises on purpose."""

    exit_code = 1


class DataError(CurationError):
    """The input data or config is wrong (exit code 1)."""

    exit_code = 1


class ConfigError(DataError):
    """A YAML config or override is wrong (exit code 1)."""


class UsageError(CurationError):
    """The command was called wrongly: missing file, bad option (exit code 2)."""

    exit_code = 2


class MissingDependencyError(UsageError):
    """An optional extra is not installed."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(
            f"this needs the '{module}' package, which is not installed. "
            f"Fix: pip install 'falldown-curate[{extra}]'"
        )
        self.module = module
        self.extra = extra


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise ``MissingDependencyError`` naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name and module.split(".")[0] != exc.name.split(".")[0]:
            raise
        raise MissingDependencyError(module, extra) from exc
