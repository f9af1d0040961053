"""Small shared helpers: atomic file writes, device choice, seeding."""

from __future__ import annotations

import contextlib
import errno
import os
import random
import stat
import sys
import tempfile
from pathlib import Path

import numpy as np

from .errors import CTCASRError


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


# Write failures that are the user's to fix (space, quota, permissions, read-only or failing
# disk, file too large, a folder where the file should go): reported as a CTCASRError naming
# the file, not as a bare OSError that names nothing (a failed write() carries no filename).
_WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EFBIG, errno.EIO,
                 errno.EISDIR)


@contextlib.contextmanager
def atomic_open(path, mode: str = "w", encoding: str | None = "utf-8"):
    """Open a temp file next to ``path``; on success fsync and rename it over ``path``.

    A crash, kill or full disk mid-write leaves the old ``path`` untouched (rename is atomic
    on POSIX within one filesystem), so no checkpoint, manifest or transcript is ever half
    written. Disk-full and permission errors become a CTCASRError naming the file.
    """
    path = Path(path)
    try:
        st = os.stat(path)  # (follows symbolic links)
    except OSError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        # A device (/dev/null, /dev/stdout), a FIFO or a terminal: written in place. A temp
        # file renamed over it would replace the node itself, as root for every user.
        if stat.S_ISDIR(st.st_mode):
            raise CTCASRError(f"{path}: cannot write (it is a directory)")
        try:
            with open(path, mode, encoding=None if "b" in mode else encoding) as f:
                yield f
        except OSError as e:
            raise CTCASRError(f"{path}: cannot write ({e.strerror or e})") from e
        return
    if st is not None and path.is_symlink():
        path = Path(os.path.realpath(path))  # replace the file the link points to, keep the link
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        # Otherwise the message would name the temp file, which the user never asked for.
        raise CTCASRError(f"{path}: cannot write ({e.strerror or e})") from e
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
        if isinstance(e, OSError) and e.errno in _WRITE_ERRNOS:
            raise CTCASRError(f"{path}: cannot write ({os.strerror(e.errno)}); the previous file is unchanged") from e
        raise
    # The rename lives in the folder's entry: sync it too, or a power cut can undo it.
    with contextlib.suppress(OSError):
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def atomic_write_text(path, text: str) -> None:
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_write_files(items) -> None:
    """Write ``[(path, str or bytes), ...]`` so that either every file is replaced or none.

    Every temp file is written in full before the first rename (the renames themselves
    need no space), so a full disk or an error in any of them leaves all the old files.
    The last file is renamed first: put the largest last, its fsync is the likeliest to fail.
    """
    with contextlib.ExitStack() as stack:
        for path, data in items:
            f = stack.enter_context(atomic_open(path, "w" if isinstance(data, str) else "wb"))
            f.write(data)


def atomic_torch_save(obj, path) -> None:
    """torch.save ``obj`` to ``path`` atomically (see atomic_open).

    Serialised in memory first: torch.save turns an OSError of the file it writes (disk
    full) into a RuntimeError like "[enforce fail at inline_container.cc] unexpected pos",
    which names neither the file nor the cause. A plain write of the bytes reports both.
    """
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    with atomic_open(path, "wb") as f:
        f.write(buf.getbuffer())


def _mps_available(torch) -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def pick_device(name: str = "auto"):
    """'auto' -> CUDA if present, else MPS if present, else CPU; anything else as given."""
    import torch

    if name in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available(torch):
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise CTCASRError(f"device {name!r} requested but CUDA is not available on this machine")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise CTCASRError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "mps" and not _mps_available(torch):
        raise CTCASRError(f"device {name!r} requested but MPS is not available on this machine")
    if dev.type not in ("cpu", "cuda", "mps"):
        # (torch knows many more, meta and xla among them; ctcasr runs on these three)
        raise CTCASRError(f"unsupported device {name!r}; use auto, cpu, cuda or cuda:N")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise CTCASRError(f"device {name!r} requested but this machine has {torch.cuda.device_count()} CUDA device(s)")
    return dev


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# glibc's malloc: large blocks (above a threshold that adapts up to 32 MiB) are mmap-ed and
# given back to the kernel when freed, and free memory at the top of the heap is returned
# above the trim threshold. A training step allocates and frees tens of MB of activations,
# gate buffers and gradients every step, so every step paid for fresh zeroed pages: page
# faults, measured on the 2-core VM as a third of a bare nn.LSTM step (179 -> 121 ms) and
# 239 -> 179 ms for ctcasr's full float32 step (benchmarks/README.md). Keeping blocks up to
# 256 MiB on the heap and trimming only above 1 GiB free makes those pages reusable, like
# the caching allocators (jemalloc/tcmalloc, PyTorch's CUDA allocator) that PyTorch's CPU
# performance guide recommends, without an LD_PRELOAD. The price: freed memory stays with
# the process (up to 1 GiB more resident than without) until it exits.
MALLOC_MMAP_THRESHOLD = 256 << 20
MALLOC_TRIM_THRESHOLD = 1 << 30
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt() parameter numbers
_malloc_tuning: str | None = None


def tune_malloc() -> str | None:
    """Raise glibc's mmap and trim thresholds for this process (see above); returns what was
    done (also in :func:`malloc_tuning`), or None when nothing was: not glibc, switched off
    with ``CTCASR_MALLOC_TUNING=0``, or the user set malloc thresholds in the environment
    (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``, ``GLIBC_TUNABLES``), which win.
    Process-wide, so ``ctcasr train`` calls it and library code does not; a training script
    that embeds ctcasr may call it itself. (Transcription does not gain enough: 10 % on a
    1-hour file for 120 MB more peak memory.)"""
    global _malloc_tuning
    if _malloc_tuning is not None:
        return _malloc_tuning
    if os.environ.get("CTCASR_MALLOC_TUNING", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    if (os.environ.get("MALLOC_MMAP_THRESHOLD_") or os.environ.get("MALLOC_TRIM_THRESHOLD_")
            or "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", "")):
        return None
    import ctypes
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = (libc.mallopt(_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD) == 1
              and libc.mallopt(_M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD) == 1)
    except (OSError, AttributeError):
        return None
    if ok:
        _malloc_tuning = (f"glibc malloc: mmap threshold {MALLOC_MMAP_THRESHOLD >> 20} MiB, "
                          f"trim threshold {MALLOC_TRIM_THRESHOLD >> 20} MiB")
    return _malloc_tuning


def malloc_tuning() -> str | None:
    """What :func:`tune_malloc` did in this process (None: nothing)."""
    return _malloc_tuning


# oneDNN (which runs nn.LSTM on dense CPU input) caches a primitive per distinct problem,
# by default up to 1024 of them; a training LSTM primitive holds tens of MB (its
# workspace), and every batch shape is a new problem. Length-bucketed batches with speed
# perturbation and joined utterances hardly ever repeat a shape, so the cache only grew:
# the digits recipe's training process went from 2 to 3.5 GB in 14 epochs, and an
# encoder stepped through 120 new shapes grew by 5.8 GB. A few dozen entries hold what
# one step reuses (its layers, directions and passes); memory then stays flat (1.8 GB
# after 14 digits epochs) and step times were the same within the VM's noise.
ONEDNN_CACHE_CAPACITY = 64
_onednn_cache: str | None = None


def limit_onednn_cache(capacity: int = ONEDNN_CACHE_CAPACITY) -> str | None:
    """Cap oneDNN's primitive cache for this process (see above) by setting
    ``ONEDNN_PRIMITIVE_CACHE_CAPACITY``, which oneDNN reads when it makes its first
    primitive, so call this before the first CPU LSTM/matmul runs (``ctcasr train`` does,
    at start). A capacity the user set (``ONEDNN_PRIMITIVE_CACHE_CAPACITY`` or the older
    ``DNNL_PRIMITIVE_CACHE_CAPACITY``) wins; then it returns None."""
    global _onednn_cache
    if _onednn_cache is not None:
        return _onednn_cache
    if any(os.environ.get(k) for k in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "DNNL_PRIMITIVE_CACHE_CAPACITY")):
        return None
    os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] = str(int(capacity))
    _onednn_cache = f"oneDNN primitive cache: {int(capacity)} entries"
    return _onednn_cache


def onednn_cache() -> str | None:
    """What :func:`limit_onednn_cache` did in this process (None: nothing)."""
    return _onednn_cache


# GNU OpenMP (libgomp, which torch's CPU kernels and oneDNN run on) lets a thread that
# finishes a parallel region spin for up to 300,000 iterations before it sleeps. In CPU
# training the DataLoader worker that loads and augments the next batches runs niced on
# the same cores (ctcasr.train._lower_priority), and the spinning threads, at normal
# priority, keep it from the cores between the LSTM's many small parallel regions: on the
# 2-core VM the training loop sat blocked on the worker 12.6 % of the time (py-spy), about
# 3-4 s of a 28 s digits epoch. With a short spin the threads sleep within a few
# microseconds, the worker runs in those gaps, and the wait falls to 0.3-0.4 s an epoch.
# (OMP_WAIT_POLICY=PASSIVE, no spin at all, made the epochs 1.8x slower.)
OPENMP_SPINCOUNT = 2000
_openmp_spin: str | None = None


def limit_openmp_spin(count: int = OPENMP_SPINCOUNT) -> str | None:
    """Set ``GOMP_SPINCOUNT`` (see above) for this process and its children. libgomp reads
    it when it is loaded, i.e. when torch is first imported, so this does nothing once torch
    is imported (``ctcasr train`` calls it before). A ``GOMP_SPINCOUNT`` or
    ``OMP_WAIT_POLICY`` the user set wins; then, too, it returns None."""
    global _openmp_spin
    if _openmp_spin is not None:
        return _openmp_spin
    if any(os.environ.get(k) for k in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")) or "torch" in sys.modules:
        return None
    os.environ["GOMP_SPINCOUNT"] = str(int(count))
    _openmp_spin = f"OpenMP spin count {int(count)}"
    return _openmp_spin


def openmp_spin() -> str | None:
    """What :func:`limit_openmp_spin` did in this process (None: nothing)."""
    return _openmp_spin
