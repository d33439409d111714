"""Files written whole or not at all (standard library only: the pipelines' gate reader uses it)."""

from __future__ import annotations

import os
from pathlib import Path


def write_text_atomically(path: Path, text: str, mode: int = 0o666) -> None:
    """Write `text` to a temporary file beside `path`, then rename it over `path`.

    A reader (or a re-run) sees the old file or the new one, never half of one. `mode` is the
    new file's permission bits before the umask, e.g. 0o600 for a file holding a key.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
