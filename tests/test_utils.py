"""Atomic writes: the old file survives a failed write, and new files get normal permissions."""

import os

import pytest

from ctcasr.utils import atomic_open, atomic_write_text


def test_atomic_write_gives_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "a.txt").st_mode & 0o777 == 0o644


def test_failed_write_leaves_old_file_and_no_temp(tmp_path):
    p = tmp_path / "model.yaml"
    atomic_write_text(p, "old")
    with pytest.raises(RuntimeError), atomic_open(p) as f:
        f.write("half")
        raise RuntimeError("killed")
    assert p.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["model.yaml"]


def test_atomic_write_through_a_link_keeps_the_link_and_leaves_devices_and_fifos_alone(tmp_path):
    import stat
    import subprocess

    real = tmp_path / "real.txt"
    real.write_text("old")
    (tmp_path / "link.txt").symlink_to(real)
    atomic_write_text(tmp_path / "link.txt", "new")
    assert (tmp_path / "link.txt").is_symlink() and real.read_text() == "new"
    # a device or FIFO is written in place: renaming a temp file over it would replace the
    # node itself (found writing -o /dev/full as root)
    atomic_write_text("/dev/null", "gone")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    atomic_write_text(fifo, "through the pipe\n")
    assert reader.communicate(timeout=10)[0] == b"through the pipe\n"
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


# --------------------------------------------------------------------- malloc tuning
_MALLINFO = r"""
import ctypes, os, sys
sys.path.insert(0, {root!r})
from ctcasr.utils import tune_malloc
print("tuning:", tune_malloc() if {tune} else None)
import numpy as np

class MallInfo2(ctypes.Structure):
    _fields_ = [(k, ctypes.c_size_t) for k in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                             "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
a = np.ones((64 << 20) // 8)   # a 64 MiB block, like an LSTM step's activations
print("mmapped:", libc.mallinfo2().hblkhd >= (64 << 20))
"""


def _mallinfo_run(tune: bool, env_extra=None):
    import platform
    import subprocess
    import sys
    from pathlib import Path

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc only")
    import ctypes

    if not hasattr(ctypes.CDLL("libc.so.6"), "mallinfo2"):
        pytest.skip("glibc without mallinfo2 (< 2.33)")
    env = {k: v for k, v in os.environ.items()
           if k not in ("CTCASR_MALLOC_TUNING", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")}
    env.update(env_extra or {})
    code = _MALLINFO.format(root=str(Path(__file__).resolve().parents[1]), tune=tune)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    return dict(line.split(": ", 1) for line in out.splitlines())


def test_tune_malloc_keeps_large_blocks_on_the_heap():
    # glibc's default: a 64 MiB block is mmap-ed (and unmapped again when freed, so the next
    # step faults its pages in afresh); after tune_malloc it comes from the heap and is reused.
    assert _mallinfo_run(tune=False)["mmapped"] == "True"
    r = _mallinfo_run(tune=True)
    assert r["tuning"].startswith("glibc malloc: mmap threshold 256 MiB")
    assert r["mmapped"] == "False"


def test_tune_malloc_can_be_switched_off_and_leaves_user_settings_alone():
    r = _mallinfo_run(tune=True, env_extra={"CTCASR_MALLOC_TUNING": "0"})
    assert r["tuning"] == "None" and r["mmapped"] == "True"
    r = _mallinfo_run(tune=True, env_extra={"MALLOC_MMAP_THRESHOLD_": "131072"})
    assert r["tuning"] == "None" and r["mmapped"] == "True"


# --------------------------------------------------------------------- oneDNN primitive cache
_ONEDNN = r"""
import sys
sys.path.insert(0, {root!r})
import torch
from ctcasr.utils import limit_onednn_cache
print("limit:", limit_onednn_cache(8) if {limit} else None, flush=True)
torch.set_num_threads(1)
lstm = torch.nn.LSTM(8, 4, 2, bidirectional=True, batch_first=True)
def step(T):
    out, _ = lstm(torch.randn(2, T, 8))
    out.sum().backward()
for T in range(10, 30):   # 20 shapes, several LSTM primitives each
    step(T)
print("=== again", flush=True)
step(10)
"""


def _onednn_run(limit: bool, env_extra=None):
    """The LSTM primitives oneDNN reports (ONEDNN_VERBOSE) for a shape seen 20 shapes ago:
    found in its cache, or made again."""
    import subprocess
    import sys
    from pathlib import Path

    import torch

    if not torch.backends.mkldnn.is_available():
        pytest.skip("torch without oneDNN")
    env = {k: v for k, v in os.environ.items()
           if k not in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "DNNL_PRIMITIVE_CACHE_CAPACITY")}
    env.update({"ONEDNN_VERBOSE": "all", "CUDA_VISIBLE_DEVICES": ""}, **(env_extra or {}))
    code = _ONEDNN.format(root=str(Path(__file__).resolve().parents[1]), limit=limit)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    limit_line = next(ln for ln in out.splitlines() if ln.startswith("limit: "))[len("limit: "):]
    after = out.split("=== again", 1)[1]
    if ",rnn" not in after:
        pytest.skip("this torch build does not run nn.LSTM through oneDNN")
    return limit_line, after.count("create:cache_hit,cpu,rnn"), after.count("create:cache_miss,cpu,rnn")


def test_onednn_cache_limit_takes_effect_in_process_and_yields_to_the_user():
    # oneDNN's default cache (1024 entries) still holds the first shape's primitives ...
    _, hits, misses = _onednn_run(limit=False)
    assert hits > 0 and misses == 0
    # ... a cap set from Python after `import torch` (as `ctcasr train` does) has evicted them
    limit, hits, misses = _onednn_run(limit=True)
    assert limit == "oneDNN primitive cache: 8 entries" and misses > 0
    # the user's own setting wins
    limit, hits, misses = _onednn_run(limit=True, env_extra={"ONEDNN_PRIMITIVE_CACHE_CAPACITY": "1024"})
    assert limit == "None" and hits > 0 and misses == 0


def test_pick_device_refuses_devices_ctcasr_does_not_run_on():
    import torch

    from ctcasr.errors import CTCASRError
    from ctcasr.utils import pick_device

    names = ["meta", "xla", "cuda:99", "gpu"]
    if not torch.backends.mps.is_available():
        names.append("mps")
    for name in names:
        with pytest.raises(CTCASRError, match=repr(name)):
            pick_device(name)  # (meta and xla were an internal error with a traceback)
    assert pick_device("cpu").type == "cpu"


# --------------------------------------------------------------------- OpenMP spin count
_SPIN = r"""
import sys, time
sys.path.insert(0, {root!r})
from ctcasr.utils import limit_openmp_spin
print("limit:", limit_openmp_spin() if {limit} else None, flush=True)
import torch
torch.set_num_threads(2)
x = torch.randn(1 << 20)
for _ in range(5):
    x.add_(1.0)             # the thread pool exists
t0 = time.process_time()
for _ in range(40):
    x.add_(1.0)             # a parallel region over both threads ...
    time.sleep(0.005)       # ... after which the other thread spins, or sleeps
print("cpu:", time.process_time() - t0, flush=True)
print("after import:", limit_openmp_spin(), flush=True)
"""


def _spin_run(limit: bool, env_extra=None):
    """CPU seconds the process burns over 40 short parallel regions each followed by 5 ms
    of sleep in the main thread (a spinning OpenMP thread burns that time)."""
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    env.update({"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "2"}, **(env_extra or {}))
    code = _SPIN.format(root=str(Path(__file__).resolve().parents[1]), limit=limit)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    lines = dict(ln.split(": ", 1) for ln in out.splitlines() if ": " in ln)
    return lines["limit"], float(lines["cpu"]), lines["after import"]


def test_openmp_spin_limit_reaches_libgomp_and_yields_to_the_user():
    from pathlib import Path

    import torch

    if (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1) < 2:
        pytest.skip("needs 2 cores: libgomp barely spins when it has more threads than cores")
    maps = Path("/proc/self/maps")
    if not (torch.__config__.parallel_info().startswith("ATen/Parallel") and maps.exists()
            and "libgomp" in maps.read_text()):
        pytest.skip("this torch build does not use GNU OpenMP")
    # With libgomp's default the second thread spins through most of each 5 ms sleep ...
    limit, cpu_default, after = _spin_run(limit=False)
    assert limit == "None" and after == "None"  # once torch is imported it is too late
    # ... with the limit set before torch is imported (as `ctcasr train` does) it sleeps.
    limit, cpu_limited, after = _spin_run(limit=True)
    assert limit == "OpenMP spin count 2000" and after == limit
    assert cpu_default > 0.05 and cpu_limited < cpu_default / 3, (cpu_default, cpu_limited)
    # The user's own setting wins.
    limit, cpu_user, _ = _spin_run(limit=True, env_extra={"GOMP_SPINCOUNT": "300000"})
    assert limit == "None" and cpu_user > 2 * cpu_limited, (cpu_user, cpu_limited)
