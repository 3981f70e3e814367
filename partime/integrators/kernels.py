"""Compiled RK kernels: build the generated C once, keep the shared library on disk, call it.

Libraries live in ``$PARTIME_CACHE/kernels`` (default ``~/.cache/partime/kernels``), named by
a hash of everything that decides their machine code: the C source (system, tableau, dtype),
the compiler and its flags, the CPU (``-march=native``), and the partime and torch versions.
A library is loaded only if its bytes match the SHA-256 recorded beside it (a truncated
shared library can pass ``dlopen`` and crash the process with SIGBUS on first use) and it
names itself (``partime_kernel_id``); anything else is deleted and rebuilt. Files are written
atomically, so concurrent processes (MPI ranks) building the same kernel never see half a
file. Calls release the GIL, so with several torch threads the row groups run in parallel.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import itertools
import os
import platform
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

import partime
from partime.integrators.codegen import KernelSource, RKArgs, SweepArgs
from partime.io import atomic_write

CACHE_ENV = "PARTIME_CACHE"
# Bump when the calling convention or the meaning of the generated code changes.
KERNEL_FORMAT = 3
# -ffp-contract=fast lets a*b+c become one FMA, as in PyTorch's vectorized add(alpha=); every
# row runs the same instructions, so a row's result does not depend on its batch or position.
FLAGS = ("-O2", "-ffp-contract=fast", "-fno-math-errno", "-fPIC", "-shared", "-std=gnu11")
NATIVE_FLAG = "-march=native"
COMPILE_TIMEOUT_S = 120
# Below this many row-steps per thread, waking a thread costs more than it saves (~20 us).
MIN_UPDATES_PER_THREAD = 100_000
_ONE_CALL = (0,)  # the first row groups of a call made on one thread

#: Counters a caller (or a test) can read: kernels built here, and loaded from the disk cache.
STATS = {"compiled": 0, "loaded": 0, "compile_s": 0.0}


class KernelBuildError(Exception):
    """No C compiler, or it rejected the generated code."""


def cache_dir() -> Path:
    """Folder of the compiled kernels: ``$PARTIME_CACHE/kernels``, default ~/.cache/partime."""
    root = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "partime"
    return Path(root).expanduser() / "kernels"


def find_compiler() -> str | None:
    """Path of the C compiler: ``$CC``, else the first of cc, gcc, clang on PATH."""
    names = [os.environ["CC"]] if os.environ.get("CC") else ["cc", "gcc", "clang"]
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


@functools.cache
def _cpu_identity() -> str:
    """Architecture and instruction-set flags: a library built with -march=native runs only
    on CPUs like the one that built it (a shared home folder may serve several kinds)."""
    try:
        with open("/proc/cpuinfo") as handle:  # the first processor's block is enough
            block = list(itertools.takewhile(str.strip, handle))
    except OSError:
        block = []
    wanted = ("model name", "flags", "Features")
    described = "".join(line for line in block if line.startswith(wanted))
    if not described:
        described = platform.processor()
    return f"{platform.system()}-{platform.machine()}-{_digest(described)[:16]}"


def _digest(text: str) -> str:
    return _digest_bytes(text.encode())


def _digest_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class KernelSpec:
    """A kernel to load or build: its source, the compiler and flags, its name (hash)."""

    source: KernelSource
    compiler: str | None
    flags: tuple[str, ...]
    name: str

    @property
    def path(self) -> Path:
        return cache_dir() / f"{self.name}.so"

    @property
    def digest_path(self) -> Path:
        """The SHA-256 of the library's bytes, written after the library."""
        return self.path.with_suffix(".sha256")

    def code(self) -> str:
        """The source with the function that names the kernel, checked when it is loaded."""
        return (
            f'{self.source.code}\nconst char* partime_kernel_id(void) {{ return "{self.name}"; }}\n'
        )


def kernel_spec(source: KernelSource) -> KernelSpec:
    """Name ``source``'s kernel by everything its machine code depends on."""
    compiler = find_compiler()
    identity = "none"
    if compiler is not None:
        real = os.path.realpath(compiler)
        stat = os.stat(real)
        identity = f"{real}:{stat.st_size}:{stat.st_mtime_ns}"
    flags = (*FLAGS, NATIVE_FLAG)
    material = "\n".join(
        [
            f"format {KERNEL_FORMAT}",
            f"partime {partime.__version__}",
            f"torch {torch.__version__}",
            f"compiler {identity}",
            " ".join(flags),
            _cpu_identity(),
            source.code,
        ]
    )
    return KernelSpec(source, compiler, flags, _digest(material)[:40])


class Kernel:
    """A loaded kernel: ``run`` advances rows of a (rows, dim) state; ``call`` runs an entry
    point (``rk_entry``, ``sweep_entry``) on an argument struct a caller keeps (see
    ``codegen``)."""

    def __init__(self, spec: KernelSpec, path: Path) -> None:
        self.path = path  # where it was loaded from, or stored after a build
        self.library = ctypes.CDLL(str(path))
        kernel_id = self.library.partime_kernel_id
        kernel_id.restype = ctypes.c_char_p
        if kernel_id() != spec.name.encode():
            raise OSError(f"{path} holds kernel {kernel_id()!r}, not {spec.name}")
        self.rk_entry = self.library.partime_rk_call
        self.sweep_entry = self.library.partime_sweep_call
        for entry in (self.rk_entry, self.sweep_entry):
            entry.restype = None
            entry.argtypes = [ctypes.c_void_p]
        self.rows_per_group = spec.source.rows_per_group

    def run(
        self, x: Tensor, t0: float | Tensor, dt: float, n_steps: int, save_every: int | None
    ) -> Tensor:
        """``n_steps`` steps of the rows of ``x`` (..., dim), contiguous CPU, from the time ``t0``
        or per-row times (float64, contiguous (rows,)): the end states (shaped like ``x``), or
        with ``save_every`` the saved states (n_steps // save_every + 1, *x.shape)."""
        rows = x.numel() // x.shape[-1]
        if save_every:
            n_saves = n_steps // save_every
            out = x.new_empty((n_saves + 1, *x.shape))
            n_steps = n_saves * save_every
        else:
            out = torch.empty_like(x, memory_format=torch.contiguous_format)
        if isinstance(t0, Tensor):
            times, stride = t0.data_ptr(), 1
        else:
            start = ctypes.c_double(t0)  # alive until the call returns
            times, stride = ctypes.addressof(start), 0
        args = RKArgs(x.data_ptr(), out.data_ptr(), times, stride, dt, n_steps, save_every or 0,
                      rows)  # fmt: skip
        self.call(self.rk_entry, args, rows, rows * n_steps)
        return out

    def call(self, entry, args: RKArgs | SweepArgs, rows: int, updates: int) -> tuple[int, ...]:
        """``entry(&args)`` over all row groups, split over threads when ``updates`` (row-steps)
        are enough to pay for waking them (each thread on a copy of ``args`` with its groups);
        returns each call's first group."""
        groups = -(-rows // self.rows_per_group)
        threads = min(torch.get_num_threads(), groups, updates // MIN_UPDATES_PER_THREAD)
        if threads <= 1:
            args.group_begin, args.group_end = 0, groups
            entry(ctypes.addressof(args))
            return _ONE_CALL
        bounds = [groups * i // threads for i in range(threads + 1)]
        copies = [type(args).from_buffer_copy(args) for _ in range(threads)]
        for copy, begin, end in zip(copies, bounds[:-1], bounds[1:], strict=True):
            copy.group_begin, copy.group_end = begin, end
        list(_pool(threads).map(lambda copy: entry(ctypes.addressof(copy)), copies))
        return tuple(bounds[:-1])


@functools.cache
def _pool(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="partime-kernel")


def load_cached(spec: KernelSpec) -> Kernel | None:
    """The kernel from the disk cache, or None; a file that does not load is removed."""
    path = spec.path
    try:
        intact = _digest_bytes(path.read_bytes()) == spec.digest_path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        intact = False
    try:
        if not intact:
            raise OSError("missing, or not the bytes that were built")
        kernel = Kernel(spec, path)
    except (OSError, AttributeError):
        for stale in (path, spec.digest_path):  # truncated or foreign: the caller rebuilds
            with contextlib.suppress(OSError):
                stale.unlink(missing_ok=True)
        return None
    STATS["loaded"] += 1
    return kernel


def _compile(spec: KernelSpec, output: Path) -> None:
    """Run the compiler on the source (read from stdin); retry without -march=native."""
    if spec.compiler is None:
        raise KernelBuildError("no C compiler found (install gcc or clang, or set CC)")
    attempts = [spec.flags, tuple(f for f in spec.flags if f != NATIVE_FLAG)]
    for flags in attempts:
        command = [spec.compiler, *flags, "-x", "c", "-", "-o", str(output)]
        try:
            done = subprocess.run(
                command,
                input=spec.code(),
                capture_output=True,
                text=True,
                timeout=COMPILE_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise KernelBuildError(f"{spec.compiler}: {err}") from None
        if done.returncode == 0:
            return
    raise KernelBuildError(f"{spec.compiler} failed: {done.stderr.strip()[-500:]}")


def build(spec: KernelSpec) -> Kernel:
    """Compile ``spec``, store the library (and its C source) in the cache, load it."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="partime-kernel-") as folder:
        built = Path(folder) / "kernel.so"
        _compile(spec, built)
        # Loaded from this build, not from the cache, where another process may be replacing
        # or removing its own copy right now.
        kernel = Kernel(spec, built)
        library = built.read_bytes()
    try:
        with atomic_write(spec.path.with_suffix(".c"), "w") as handle:
            handle.write(spec.code())
        with atomic_write(spec.path) as handle:
            handle.write(library)
        with atomic_write(spec.digest_path, "w") as handle:
            handle.write(_digest_bytes(library))
        kernel.path = spec.path
    except OSError:
        pass  # an unwritable cache: this process keeps its build, the next one builds again
    STATS["compiled"] += 1
    STATS["compile_s"] += time.perf_counter() - start
    return kernel
