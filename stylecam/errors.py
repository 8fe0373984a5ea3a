"""User-facing errors: one line saying what is wrong and what to do, exit code 2."""
from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input. ``str(err)`` is the one-line message with its hint.

    CLIs catch it, print ``stylecam: error: <message>`` to stderr and return ``exit_code``.
    """

    def __init__(self, message: str, hint: str | None = None, exit_code: int = 2):
        self.message = message
        self.hint = hint
        self.exit_code = exit_code
        super().__init__(f"{message} ({hint})" if hint else message)


class InputRefused(UserError):
    """One input that stylecam refuses or cannot stylize: more pixels than --max-pixels, too large
    for the memory, or a style model whose output is not finite for it.

    Given alone it ends the run like any UserError (one line, exit 2); in a batch (a folder, a
    glob, several inputs) it is reported and skipped like an unreadable file (exit 1 at the end).
    """
