"""numba kernels of the Euler ReLU chain y_{k+1} = y_k + dt·ReLU(W_k y_k + b_k).

States are (v, N) arrays (features, samples) so that every inner loop runs over the samples
(contiguous, vectorised). The backward pass recomputes each segment of ``segment`` layers from
a checkpoint of its first state: the segment's states stay in cache, and on the circles network
(v = 3, K = 2048, N = 2000) this measured 0.042 s per forward + backward against 0.060 s when
all K + 1 states went through memory (and 0.079 s with a fresh 98 MB buffer per call).
Imported only through ``partime.mgopt.fused`` (numba is an optional backend).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, fastmath=True)
def _layer(y, weight, bias, dt, out, z):  # pragma: no cover - compiled
    """out = y + dt·ReLU(weight @ y + bias) for y (v, N); z (N,) is scratch."""
    width, samples = y.shape
    for i in range(width):
        for n in range(samples):
            z[n] = bias[i]
        for j in range(width):
            w = weight[i, j]
            for n in range(samples):
                z[n] += w * y[j, n]
        for n in range(samples):
            out[i, n] = y[i, n] + dt * max(z[n], 0.0)


@njit(cache=True, fastmath=True)
def _layer_backward(y, weight, bias, dt, adjoint, g, z, d_weight, d_bias):  # pragma: no cover
    """One layer of the adjoint: given adjoint = dL/dy_{k+1} (updated in place to dL/dy_k),
    write dL/dW_k and dL/db_k. y is the layer's input state (v, N); g (v, N), z (N,) scratch."""
    width, samples = y.shape
    for i in range(width):
        for n in range(samples):
            z[n] = bias[i]
        for j in range(width):
            w = weight[i, j]
            for n in range(samples):
                z[n] += w * y[j, n]
        total = 0.0
        for n in range(samples):
            # ReLU'(0) = 0, as torch's threshold_backward
            gn = dt * adjoint[i, n] if z[n] > 0.0 else 0.0
            g[i, n] = gn
            total += gn
        d_bias[i] = total
    for i in range(width):
        for j in range(width):
            total = 0.0
            for n in range(samples):
                total += g[i, n] * y[j, n]
            d_weight[i, j] = total
    for j in range(width):
        for i in range(width):
            w = weight[i, j]
            for n in range(samples):
                adjoint[j, n] += w * g[i, n]


@njit(cache=True)
def forward(y0, weight, bias, dt, segment, checkpoints):  # pragma: no cover - compiled
    """y_K of the chain from y0 (v, N); stores y_k for k = 0, segment, 2·segment, … in
    checkpoints (ceil(K / segment), v, N) unless checkpoints has no rows (inference)."""
    layers = weight.shape[0]
    z = np.empty(y0.shape[1], dtype=y0.dtype)
    y = y0.copy()
    out = np.empty_like(y)
    keep = checkpoints.shape[0] > 0
    for k in range(layers):
        if keep and k % segment == 0:
            checkpoints[k // segment] = y
        _layer(y, weight[k], bias[k], dt, out, z)
        y, out = out, y
    return y


@njit(cache=True)
def backward(
    checkpoints, weight, bias, dt, segment, adjoint_end, d_weight, d_bias
):  # pragma: no cover
    """dL/dy_0 (v, N) from dL/dy_K; writes dL/dW (K, v, v) and dL/db (K, v)."""
    layers, width = weight.shape[0], weight.shape[1]
    samples = adjoint_end.shape[1]
    adjoint = adjoint_end.copy()
    g = np.empty((width, samples), dtype=adjoint.dtype)
    z = np.empty(samples, dtype=adjoint.dtype)
    states = np.empty((segment + 1, width, samples), dtype=adjoint.dtype)
    for s in range(checkpoints.shape[0] - 1, -1, -1):
        first, end = s * segment, min(layers, (s + 1) * segment)
        states[0] = checkpoints[s]
        for k in range(first, end - 1):
            _layer(states[k - first], weight[k], bias[k], dt, states[k - first + 1], z)
        for k in range(end - 1, first - 1, -1):
            _layer_backward(
                states[k - first], weight[k], bias[k], dt, adjoint, g, z, d_weight[k], d_bias[k]
            )
    return adjoint
