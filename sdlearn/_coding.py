"""Codes of new samples on a fixed dictionary: least squares, or nonnegative least squares.

Both are vectorised over samples (matrix products on the whole batch, no Python loop over
samples), and each sample's result depends only on that sample, so predictions on a subset
equal the matching rows of predictions on the whole set.
"""

import math

import numpy as np
import scipy.sparse as sp

from ._data import max_abs, times_power_of_two
from ._rows import is_dask, keep, row_map


def encode(X, W, xp, *, nonnegative=False, max_iter=200, tol=1e-6, scale=1.0, largest=None):
    """Codes ``C`` minimising ``||X - C W^T||_F^2`` row by row (``C >= 0`` if ``nonnegative``).

    Parameters
    ----------
    X : array or sparse matrix of shape (n, p)
        Also a data matrix (:mod:`sdlearn._data`), whose rows may live on a dask cluster: the
        codes are then a row array computed chunk by chunk.
    W : array of shape (p, r)
        Dictionary, atoms as columns.
    nonnegative : bool, default=False
        Solve the nonnegative least-squares problem by accelerated projected gradient (FISTA)
        with a per-sample stopping rule.
    max_iter : int, default=200
        FISTA iterations at most (nonnegative case).
    tol : float, default=1e-6
        A sample stops when its code moves less than ``tol`` times its norm (or than ``tol``
        times ``1e-12`` of the largest entry of ``X W``).
    scale : float, default=1.0
        A power of two: return the codes of ``X / scale`` (exact), computed without forming
        ``X W`` at the scale of ``X`` (which could overflow for data near the float range).
    largest : float, default=None
        The largest absolute entry of ``X W`` over the whole data set, when ``X`` is only a part
        of it (a row block): the nonnegative codes then equal those of the whole set's rows.

    Returns
    -------
    C : array of shape (n, r)
    """
    XW = scaled_product(X, W, xp, scale)
    gram = W.T @ W
    if not nonnegative:
        return ridge_solve(gram, XW, xp)
    if largest is None:
        XW = keep(XW)  # read twice on a cluster: for its largest entry, then for the codes
        largest = max_abs(XW, xp)  # one round trip for rows on a cluster
    if is_dask(XW):
        return row_map(nonnegative_codes, XW, ncols=W.shape[1], dtype=XW.dtype, gram=gram, largest=largest,
                       max_iter=max_iter, tol=tol, xp=np)
    return nonnegative_codes(XW, gram, largest, max_iter, tol, xp)


def scaled_product(X, W, xp, scale=1.0):
    """``(X / scale) @ W`` without forming ``X W`` at the scale of ``X``."""
    k = math.frexp(scale)[1] - 1
    # large X: scale the thin W down before the product; small X: scale the product up
    XW = X @ (times_power_of_two(W, -k, xp) if k > 0 else W)
    if sp.issparse(X):
        XW = xp.asarray(XW)
    if k < 0:
        XW = times_power_of_two(XW, -k, xp)
    return XW


def nonnegative_codes(XW, gram, largest, max_iter, tol, xp):
    """Nonnegative least-squares codes from ``X W`` and ``W^T W`` (FISTA, row by row); ``largest``
    is the largest absolute entry of ``X W`` (of the whole data set)."""
    floor = 16.0 * float(xp.finfo(gram.dtype).smallest_normal)  # its inverse is a finite float of the dtype
    step = 1.0 / max(float(xp.max(xp.linalg.eigvalsh(gram))), floor)
    # the iterations run on X / 2**k with entries of order one (exact; the codes scale back):
    # squared norms neither overflow nor underflow and the stopping rule's floor is relative
    shift = math.frexp(float(largest))[1]
    XW = times_power_of_two(XW, -shift, xp)
    C = step * xp.clip(XW, 0.0, None)
    Z, t = C, 1.0
    active = xp.ones((C.shape[0],), dtype=xp.bool, device=C.device)
    for _ in range(max_iter):
        C_new = xp.clip(Z - step * (Z @ gram - XW), 0.0, None)
        t_new = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
        Z_new = C_new + ((t - 1.0) / t_new) * (C_new - C)
        moved = xp.sqrt(xp.sum((C_new - C) ** 2, axis=1))
        size = xp.sqrt(xp.sum(C_new**2, axis=1))
        C = xp.where(active[:, None], C_new, C)
        Z = xp.where(active[:, None], Z_new, Z)
        active = active & (moved > tol * xp.maximum(size, xp.ones_like(size) * 1e-12))
        t = t_new
        if not bool(xp.any(active)):
            break
    return times_power_of_two(C, shift, xp)


def ridge_solve(gram, B, xp):
    """``B (gram + eps I)^-1`` for a symmetric positive semi-definite ``gram``: least squares
    with a ridge just large enough to keep the solve regular (``1e-12`` of the trace, or ten
    units of rounding of the dtype; a positive floor for a zero ``gram``)."""
    finfo = xp.finfo(gram.dtype)
    relative = max(1e-12, 10.0 * float(finfo.eps))
    ridge = max(relative * float(xp.linalg.trace(gram)), 16.0 * float(finfo.smallest_normal))
    eye = xp.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
    if is_dask(B):  # rows on a cluster: each chunk solves its own right-hand sides
        return row_map(_solve_rows, B, ncols=B.shape[1], dtype=B.dtype, M=gram + ridge * eye)
    return xp.linalg.solve(gram + ridge * eye, B.T).T


def _solve_rows(B, M):
    return np.linalg.solve(M, B.T).T
