"""The ``curate`` command line: thin typer commands over the library.

``_app`` holds the typer app and what every command shares (errors and exit codes,
SIGTERM, the database choice); ``options`` the option blocks several commands take.
Each command group is a module that registers its commands on ``app``; ``COMMAND_GROUPS``
imports them in the order ``curate --help`` lists them. Heavy packages (torch, lavis,
fiftyone) are imported inside the commands that need them, so ``curate --help`` stays fast.
"""

from __future__ import annotations

import importlib

from curation.cli._app import app, console, err_console, handles_errors, terminate_like_ctrl_c

#: the modules of this package that register commands, in ``curate --help`` order
COMMAND_GROUPS = (
    "validate",  # validate, schema
    "export",  # export
    "train",  # train, predict
    "mix",  # mix
    "evaluate",  # eval
    "curator",  # ingest, check, review, find-issues
    "events",  # watch, eval-events
    "deploy",  # quantize, serve
)
for _group in COMMAND_GROUPS:
    importlib.import_module(f"{__name__}.{_group}")

__all__ = ["app", "console", "err_console", "handles_errors", "terminate_like_ctrl_c"]
