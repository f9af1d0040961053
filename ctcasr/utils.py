"""Small shared helpers: atomic file writes, device choice, seeding."""

from __future__ import annotations

import contextlib
import errno
import os
import random
import tempfile
from pathlib import Path

import numpy as np

from .errors import CTCASRError


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


@contextlib.contextmanager
def atomic_open(path, mode: str = "w", encoding: str | None = "utf-8"):
    """Open a temp file next to ``path``; on success fsync and rename it over ``path``.

    A crash, kill or full disk mid-write leaves the old ``path`` untouched (rename is atomic
    on POSIX within one filesystem), so no checkpoint, manifest or transcript is ever half
    written. Disk-full and permission errors become a CTCASRError naming the file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes 0600 files; give the result the mode open() would have (0666 & ~umask),
        # or shipped models and shared experiment dirs become unreadable to other users.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS):
            raise CTCASRError(f"{path}: cannot write ({os.strerror(e.errno)}); the previous file is unchanged") from e
        raise


def atomic_write_text(path, text: str) -> None:
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_torch_save(obj, path) -> None:
    import torch

    with atomic_open(path, "wb") as f:
        torch.save(obj, f)


def pick_device(name: str = "auto"):
    """'auto' -> CUDA if present, else MPS if present, else CPU; anything else as given."""
    import torch

    if name in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise CTCASRError(f"device {name!r} requested but CUDA is not available on this machine")
    try:
        return torch.device(name)
    except RuntimeError:
        raise CTCASRError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
