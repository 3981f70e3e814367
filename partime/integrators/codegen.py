"""C source of a fused Runge–Kutta kernel for a ComponentSystem, a tableau and a dtype.

The right-hand side comes from ``translate``; around it the kernel keeps ``LANES`` rows per
vector register and a few vectors at a time (instruction-level parallelism), takes every RK
stage in the eager order (``x + (dt * a_ij) * k_j`` per nonzero weight) and all steps in
registers, and stores the states it is asked to save. A second entry point runs parareal's
whole coarse sweep (a chain of such integrations with corrections) in one call.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import torch

from partime.dynamics.base import ComponentSystem
from partime.integrators.tableaus import ButcherTableau
from partime.integrators.translate import KernelUnsupportedError, rhs_source, trace_components

# One AVX-512 register; the compiler splits wider-than-native vectors on narrower units.
LANE_BYTES = 64
C_TYPES = {torch.float64: "double", torch.float32: "float"}

# The arguments of the two entry points, as (name, C type): one struct each, passed by pointer.
_RK_FIELDS = (
    ("x", "const T*"), ("out", "T*"), ("t0", "const double*"), ("t0_stride", "int64_t"),
    ("dt", "double"), ("n_steps", "int64_t"), ("save_every", "int64_t"), ("rows", "int64_t"),
    ("group_begin", "int64_t"), ("group_end", "int64_t"),
)  # fmt: skip
_SWEEP_FIELDS = (
    ("starts", "T*"), ("ends", "T*"), ("fine", "const T*"), ("t0", "const double*"),
    ("t0_slice_stride", "int64_t"), ("t0_row_stride", "int64_t"), ("dt", "double"),
    ("n_steps", "const int64_t*"), ("rows", "int64_t"), ("first", "int64_t"),
    ("count", "int64_t"), ("exact", "int64_t"), ("report", "double*"), ("scratch", "T*"),
    ("group_begin", "int64_t"), ("group_end", "int64_t"),
)  # fmt: skip


def _structure(name: str, fields: tuple[tuple[str, str], ...]) -> type[ctypes.Structure]:
    """The ctypes mirror of a C argument struct (every field 8 bytes: no padding)."""
    ctype = {"double": ctypes.c_double, "int64_t": ctypes.c_int64}
    layout = [(f, ctypes.c_void_p if c.endswith("*") else ctype[c]) for f, c in fields]
    return type(name, (ctypes.Structure,), {"_fields_": layout})


def _c_struct(name: str, fields: tuple[tuple[str, str], ...]) -> str:
    body = "".join(f"    {c} {f};\n" for f, c in fields)
    return f"struct {name} {{\n{body}}};"


#: ctypes structs of ``partime_rk_call``'s and ``partime_sweep_call``'s arguments
RKArgs = _structure("RKArgs", _RK_FIELDS)
SweepArgs = _structure("SweepArgs", _SWEEP_FIELDS)
_ARGS_STRUCTS = f"{_c_struct('rk_args', _RK_FIELDS)}\n\n{_c_struct('sweep_args', _SWEEP_FIELDS)}"


@dataclass(frozen=True)
class KernelSource:
    """C source of ``partime_rk`` and ``partime_sweep`` (see ``kernel_source``) and what the
    caller needs to know."""

    code: str
    rows_per_group: int  # rows one pass of the step loop advances (padding granule)
    ops: int  # traced operations per right-hand-side evaluation


def vectors_per_group(dim: int) -> int:
    """Independent vectors stepped together (measured on Lorenz, dim 3: 3 of 8 lanes)."""
    return max(1, min(4, 9 // dim))


def _step_source(tableau: ButcherTableau, dim: int) -> tuple[str, list[str], list[str]]:
    """(body of ``rk_step``, C expressions of its alpha = dt*a_ij|b_j and stage time offsets)."""
    alphas: list[str] = []
    lines = [f"    V k[{tableau.stages}][DIM];", "    V xi[DIM];"]

    def combine(into: str, weights: tuple[float, ...]) -> None:
        # x + (dt*w_j) * k_j, one weight at a time in the eager order (zero weights skipped)
        source = "x"
        for j, w in enumerate(weights):
            if w != 0.0:
                alphas.append(f"(T)(dt * {float(w).hex()})")
                index = len(alphas) - 1
                for c in range(dim):
                    lines.append(f"    {into}[{c}] = {source}[{c}] + alpha[{index}] * k[{j}][{c}];")
                source = into
        if source == "x" and into != "x":
            lines.extend(f"    {into}[{c}] = x[{c}];" for c in range(dim))

    offsets = []
    for i, (row, c_i) in enumerate(zip(tableau.a, tableau.c, strict=True)):
        offsets.append(f"dt * {float(c_i).hex()}" if c_i else "0.0")
        if i == 0:
            lines.append("    rhs(t, x, k[0]);")
            continue
        combine("xi", row)
        time = f"t + offset[{i}]" if c_i else "t"
        lines.append(f"    rhs({time}, xi, k[{i}]);")
    combine("x", tableau.b)
    return "\n".join(lines), alphas, offsets


def kernel_source(
    system: ComponentSystem, tableau: ButcherTableau, dtype: torch.dtype
) -> KernelSource:
    """The C source of ``partime_rk`` and ``partime_sweep`` for ``system`` stepped by
    ``tableau`` in ``dtype``.

    ``partime_rk(x, out, t0, t0_stride, dt, n_steps, save_every, rows, g0, g1)`` advances the
    rows of groups g0..g1-1 of ``x`` (rows, dim) by ``n_steps`` steps from per-row times
    ``t0[r * t0_stride]`` (float64), writing the end states (rows, dim) to ``out``, or with
    ``save_every = s > 0`` the states at steps 0, s, 2s, ... (n_steps // s + 1, rows, dim).

    ``partime_sweep(starts, ends, fine, t0, t0_slice_stride, t0_row_stride, dt, n_steps, rows,
    first, count, exact, report, scratch, g0, g1)`` is parareal's coarse sweep over slices
    first..count-1 of ``starts`` (count+1, rows, dim), in place: G_j = partime_rk of
    ``starts[j]`` (``n_steps[j]`` steps from times ``t0[j * t0_slice_stride + r *
    t0_row_stride]``), then ``starts[j+1] = ends[j] = G_j``, or with ``fine`` (count-first, rows,
    dim; NULL for none), whose ``ends[j]`` hold the previous G_j on entry, ``starts[j+1] =
    fine[j-first] + (G_j - ends[j])`` and ``ends[j] = G_j`` (G_j computed into ``scratch``, one
    (rows, dim) state); at slice ``exact`` ``starts[j+1] = fine[j-first]`` and ``ends[j]`` is
    left alone. It writes ``report[2*g0]`` = the largest |new - prior| over the start states it
    wrote (parareal's residual: the prior values are the previous iterate's) and
    ``report[2*g0+1]`` = 1 if any of them is NaN or Inf, else 0.

    Python calls both through ``partime_rk_call`` and ``partime_sweep_call``, which take one
    pointer to a struct of these arguments (``RKArgs``, ``SweepArgs``): a ctypes call costs
    ~0.3 us per argument, as much as a coarse slice's kernel.
    """
    if dtype not in C_TYPES:
        raise KernelUnsupportedError(f"dtype {dtype}")
    dim = system.dim
    helpers, rhs, ops = rhs_source(trace_components(system), dim, dtype)
    step, alphas, offsets = _step_source(tableau, dim)
    lanes = LANE_BYTES // dtype.itemsize
    vectors = vectors_per_group(dim)
    # A group of a small batch steps one vector, not the empty ones (every vector runs the same
    # statements, so a row's result does not depend on the loop); two loops compile faster
    # than one per count.
    loops = "\n".join(
        _STEP_LOOP.format(
            condition="active == 1" if active == 1 else "active > 1",
            steps="\n".join(
                f"                rk_step(tv[{u}] + ti, s[{u}], alpha, offset);"
                for u in range(active)
            ),
        )
        for active in sorted({1, vectors})
    )
    # The class, not repr(system): a default repr holds an address that differs per process.
    title = f"{type(system).__module__}.{type(system).__qualname__}, {tableau.name}, {dtype}"
    time_to_state = (
        "#define TIME_TO_STATE(v) (v)"
        if dtype == torch.float64
        else "#define TIME_TO_STATE(v) __builtin_convertvector((v), V)"
    )
    code = _TEMPLATE.format(
        title=title,
        ctype=C_TYPES[dtype],
        lanes=lanes,
        dim=dim,
        vectors=vectors,
        lane_bytes=LANE_BYTES,
        time_bytes=8 * lanes,
        time_to_state=time_to_state,
        args_structs=_ARGS_STRUCTS,
        helpers=helpers,
        rhs=rhs,
        step=step,
        alphas=", ".join(alphas) or "0",
        offsets=", ".join(offsets),
        loops=loops,
    )
    return KernelSource(code=code, rows_per_group=lanes * vectors, ops=max(ops, 1))


_STEP_LOOP = """\
        if ({condition})
            for (int64_t i = 0; i < n_steps; i++) {{
                const double ti = (double)i * dt;
{steps}
                if (save_every && --until_save == 0) {{
                    until_save = save_every;
                    store(out + ((i + 1) / save_every) * rows * DIM, s, first, rows);
                }}
            }}"""

_TEMPLATE = """\
/* partime RK kernel: {title} */
#include <stdint.h>
#include <math.h>

typedef {ctype} T;
#define LANES {lanes}
#define DIM {dim}
#define VECTORS {vectors}
typedef T V __attribute__((vector_size({lane_bytes})));
typedef double TV __attribute__((vector_size({time_bytes})));
#define INLINE static inline __attribute__((always_inline))
{time_to_state}

{helpers}

INLINE void rhs(TV t, const V* restrict x, V* restrict dx) {{
    (void)t;
{rhs}
}}

INLINE void rk_step(TV t, V* restrict x, const T* restrict alpha, const double* restrict offset) {{
    (void)offset;
{step}
}}

INLINE void store(T* restrict out, V s[VECTORS][DIM], int64_t first, int64_t rows) {{
    for (int u = 0; u < VECTORS; u++)
        for (int l = 0; l < LANES; l++) {{
            const int64_t r = first + u * LANES + l;
            if (r < rows)
                for (int c = 0; c < DIM; c++) out[r * DIM + c] = s[u][c][l];
        }}
}}

/* Not inlined into partime_sweep: the sweep runs these very instructions, bit for bit. */
__attribute__((noinline))
void partime_rk(const T* restrict x, T* restrict out, const double* restrict t0,
                int64_t t0_stride, double dt, int64_t n_steps, int64_t save_every, int64_t rows,
                int64_t group_begin, int64_t group_end) {{
    const T alpha[] = {{{alphas}}};
    const double offset[] = {{{offsets}}};
    for (int64_t g = group_begin; g < group_end; g++) {{
        V s[VECTORS][DIM];
        TV tv[VECTORS];
        const int64_t first = g * VECTORS * LANES;
        for (int u = 0; u < VECTORS; u++)
            for (int l = 0; l < LANES; l++) {{
                int64_t r = first + u * LANES + l;
                if (r >= rows) r = rows - 1;  /* padding lanes repeat the last row */
                for (int c = 0; c < DIM; c++) s[u][c][l] = x[r * DIM + c];
                tv[u][l] = t0[r * t0_stride];
            }}
        const int64_t left = (rows - first + LANES - 1) / LANES;
        const int active = left < VECTORS ? (int)left : VECTORS;  /* vectors with rows */
        if (save_every) store(out, s, first, rows);
        int64_t until_save = save_every;
{loops}
        if (!save_every) store(out, s, first, rows);
    }}
}}

/* next[i] = value, keeping the largest |value - next[i]| in change and NaN/Inf in bad */
#define WRITE(i, value) do {{ \
        const T v_ = (value); \
        T d_ = v_ - next[i]; \
        d_ = d_ < 0 ? -d_ : d_; \
        if (d_ > change) change = d_; \
        bad |= !isfinite(v_); \
        next[i] = v_; \
    }} while (0)

void partime_sweep(T* restrict starts, T* restrict ends, const T* restrict fine,
                   const double* restrict t0, int64_t t0_slice_stride, int64_t t0_row_stride,
                   double dt, const int64_t* restrict n_steps, int64_t rows, int64_t first,
                   int64_t count, int64_t exact, double* restrict report, T* restrict scratch,
                   int64_t group_begin, int64_t group_end) {{
    const int64_t size = rows * DIM;
    const int64_t lo = group_begin * VECTORS * LANES * DIM;  /* this call's rows, as values */
    int64_t hi = group_end * VECTORS * LANES * DIM;
    if (hi > size) hi = size;
    T change = 0;
    int bad = 0;
    for (int64_t j = first; j < count; j++) {{
        T* restrict next = starts + (j + 1) * size;
        T* restrict g = ends + j * size;
        const T* restrict f = fine ? fine + (j - first) * size : 0;
        if (j == exact) {{  /* a final start state: the coarse terms cancel */
            for (int64_t i = lo; i < hi; i++) WRITE(i, f[i]);
            continue;
        }}
        if (!f) {{
            partime_rk(starts + j * size, g, t0 + j * t0_slice_stride, t0_row_stride, dt,
                       n_steps[j], 0, rows, group_begin, group_end);
            for (int64_t i = lo; i < hi; i++) WRITE(i, g[i]);
            continue;
        }}
        partime_rk(starts + j * size, scratch, t0 + j * t0_slice_stride, t0_row_stride, dt,
                   n_steps[j], 0, rows, group_begin, group_end);
        for (int64_t i = lo; i < hi; i++) {{  /* the eager order: F + (G_new - G_old) */
            WRITE(i, f[i] + (scratch[i] - g[i]));
            g[i] = scratch[i];
        }}
    }}
    report[2 * group_begin] = (double)change;
    report[2 * group_begin + 1] = bad;
}}

{args_structs}

void partime_rk_call(const struct rk_args* a) {{
    partime_rk(a->x, a->out, a->t0, a->t0_stride, a->dt, a->n_steps, a->save_every, a->rows,
               a->group_begin, a->group_end);
}}

void partime_sweep_call(const struct sweep_args* a) {{
    partime_sweep(a->starts, a->ends, a->fine, a->t0, a->t0_slice_stride, a->t0_row_stride,
                  a->dt, a->n_steps, a->rows, a->first, a->count, a->exact, a->report,
                  a->scratch, a->group_begin, a->group_end);
}}
"""
