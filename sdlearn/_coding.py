"""Codes of new samples on a fixed dictionary: least squares, or nonnegative least squares.

Both are vectorised over samples (matrix products on the whole batch, no Python loop over
samples), and each sample's result depends only on that sample, so predictions on a subset
equal the matching rows of predictions on the whole set.
"""

import math

import scipy.sparse as sp


def encode(X, W, xp, *, nonnegative=False, max_iter=200, tol=1e-6):
    """Codes ``C`` minimising ``||X - C W^T||_F^2`` row by row (``C >= 0`` if ``nonnegative``).

    Parameters
    ----------
    X : array or sparse matrix of shape (n, p)
    W : array of shape (p, r)
        Dictionary, atoms as columns.
    nonnegative : bool, default=False
        Solve the nonnegative least-squares problem by accelerated projected gradient (FISTA)
        with a per-sample stopping rule.
    max_iter : int, default=200
        FISTA iterations at most (nonnegative case).
    tol : float, default=1e-6
        A sample stops when its code moves less than ``tol`` times its norm.

    Returns
    -------
    C : array of shape (n, r)
    """
    XW = X @ W
    if sp.issparse(X):
        XW = xp.asarray(XW)
    gram = W.T @ W
    r = gram.shape[0]
    eye = xp.eye(r, dtype=gram.dtype, device=gram.device)
    if not nonnegative:
        ridge = max(1e-12 * float(xp.linalg.trace(gram)), 1e-200)  # whose inverse is finite
        return xp.linalg.solve(gram + ridge * eye, XW.T).T
    step = 1.0 / max(float(xp.max(xp.linalg.eigvalsh(gram))), 1e-300)
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
    return C
