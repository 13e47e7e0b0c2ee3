"""Paths that a model file or a bundle's manifest names are followed only inside their folder:
no absolute path, no `..` out of it, no symlink that leads out of it.
"""

from __future__ import annotations

import os
from pathlib import Path

from edgeexport.errors import UsageError


def resolve_inside(root: str | os.PathLike[str], rel: object, source: str | os.PathLike[str],
                   what: str) -> Path:
    """`root / rel` with symlinks resolved, provided it stays inside `root`; else a UsageError
    naming `source` (the file that holds the path), `what` it is and the offending path.

    `root` is resolved too, so the test holds whether the command was started in the model's
    folder (a bare file name has the folder "") or anywhere else.
    """
    if not isinstance(rel, str) or not rel or "\x00" in rel:
        raise UsageError(f"{source}: {what} path {rel!r} is not a relative file name; "
                         "the file is damaged or was not written by this tool")
    if os.path.isabs(rel) or Path(rel).is_absolute() or rel.startswith(("/", "\\")):
        raise UsageError(f"{source}: {what} path {rel!r} is absolute; a model or bundle may "
                         "only name files inside its own folder, so this file is refused")
    base = Path(os.path.realpath(Path(root) if str(root) else Path.cwd()))
    full = Path(os.path.realpath(base / rel))
    if full != base and base not in full.parents:
        raise UsageError(f"{source}: {what} path {rel!r} leads outside {base} (through '..' or "
                         "a symlink); a model or bundle may only name files inside its own "
                         "folder, so this file is refused")
    return full
