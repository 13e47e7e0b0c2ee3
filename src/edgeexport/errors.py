"""Errors that the command line turns into one clear line and an exit code.

UsageError is the user's input (exit 2); ConversionError is our failure to convert (exit 1).
"""

from __future__ import annotations


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (at most 200 characters), for one-line errors."""
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


class EdgeExportError(Exception):
    """Base class: the message is the whole story, shown on one line without a traceback."""

    exit_code = 1


class UsageError(EdgeExportError):
    """Bad input or bad usage: missing file, wrong shape, unreadable data (exit 2).

    `api`: the same message worded for the Python API (naming its arguments, not CLI flags);
    edgeexport.api re-raises with it (for_api)."""

    exit_code = 2

    def __init__(self, message: str, api: str | None = None) -> None:
        super().__init__(message)
        self.api = api

    def for_api(self) -> UsageError:
        return UsageError(self.api) if self.api else self


class ConversionError(EdgeExportError):
    """The input was fine but a stage could not produce a result (exit 1)."""

    exit_code = 1


class UnsupportedOpError(ConversionError):
    """A node that a target (or the edge profile) cannot take.

    Carries the op, the node name, where it came from in the PyTorch model when known, and the
    targets that do support the op, so the message tells the user what to do next.
    """

    def __init__(self, op: str, node: str, *, target: str | None = None, reason: str = "",
                 source: str | None = None, supported_by: list[str] | None = None) -> None:
        self.op, self.node, self.target, self.reason = op, node, target, reason
        self.source, self.supported_by = source, list(supported_by or [])
        where = f" (from {source})" if source else ""
        scope = f"target '{target}'" if target else "the edge profile"
        why = f": {reason}" if reason else ""
        others = (f"; supported by: {', '.join(self.supported_by)}" if self.supported_by
                  else "; no target supports it yet")
        super().__init__(f"op {op} at node '{node}'{where} is not supported by {scope}{why}{others}")
