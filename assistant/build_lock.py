"""One build at a time per index directory: an fcntl lock that the kernel releases when its holder dies."""

from __future__ import annotations

import fcntl
import json
import os
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

from assistant.errors import AssistantError

LOCK_NAME = ".build.lock"


class BuildLockedError(AssistantError):
    """Another build of the same index directory is running."""


def _holder(handle) -> str:
    handle.seek(0)
    try:
        info = json.loads(handle.read() or "{}")
        return f"pid {int(info['pid'])}, started {info['started']}"
    except (ValueError, KeyError, TypeError):
        return "a process that is just starting"


@contextmanager
def build_lock(index_dir: Path, wait: bool = False, log: Callable[[str], None] = print,
               poll_seconds: float = 0.2) -> Iterator[None]:
    """Holds the build lock of `index_dir`; without `wait`, a running build raises BuildLockedError."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / LOCK_NAME, "a+", encoding="utf-8") as handle:
        told = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _holder(handle)
                if not wait:
                    raise BuildLockedError(
                        f"another build of {index_dir} is running ({holder}): wait for it, or add --wait"
                    ) from None
                if not told:
                    log(f"waiting for the build that is running ({holder})")
                    told = True
                time.sleep(poll_seconds)
        try:
            handle.seek(0)
            handle.truncate()
            started = datetime.now(timezone.utc).isoformat(timespec="seconds")
            handle.write(json.dumps({"pid": os.getpid(), "started": started}))
            handle.flush()
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle, fcntl.LOCK_UN)
