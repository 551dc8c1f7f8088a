"""Rank-r projection of a data matrix with a few columns appended: the cost centre of LPGD.

LPGD projects ``M = [A, c T]`` onto rank ``r``, where ``A`` is fixed (``X^T`` in filter mode,
``X`` in feature mode, shape (m, k)) and ``T`` (m, d) is a thin block with ``d = K - 1``
columns. The best rank-r approximation is ``U U^T M`` with ``U`` the top-r left singular
vectors of ``M``; only ``U`` is needed, never the dense ``m x k`` product.

Two projectors:

* :class:`GramProjector` (exact): precomputes the Gram matrix of ``A`` on its smaller side once
  and solves a symmetric eigenproblem of that size per iteration.
* :class:`SubspaceProjector` (approximate, for large or sparse ``A``): randomized subspace
  iteration on products with ``A``, warm-started from the previous iteration's subspace, so that
  one power step per iteration suffices once the iterates settle.

Both return a :class:`Basis` and answer ``quad(b1, b2) = U1^T A A^T U2``, which gives the
reconstruction error ``||A - U U^T A||^2 = ||A||^2 - tr(quad(b, b))`` without the residual.
"""

from dataclasses import dataclass
from typing import Any

import scipy.sparse as sp

from ._backend import device_of


@dataclass
class Basis:
    """Orthonormal basis ``U`` (m, r) of the projection, singular values ``s`` of ``M`` and
    ``E = A^T U`` (k, r) when it came for free (``None`` otherwise)."""

    U: Any
    s: Any
    E: Any = None


def _top_eigh(G, r, xp):
    """Top-r eigenpairs of a symmetric matrix, largest first."""
    evals, evecs = xp.linalg.eigh(G)
    evals = xp.flip(evals[-r:], axis=0)
    evecs = xp.flip(evecs[:, -r:], axis=1)
    return xp.sqrt(xp.clip(evals, 0.0, None)), evecs


def _dense(product, xp):
    return xp.asarray(product.toarray() if sp.issparse(product) else product)


class GramProjector:
    """Exact projection through the Gram matrix of ``A`` on its smaller side.

    Left side (m <= k): eigenvectors of ``A A^T + c^2 T T^T`` (m x m) are ``U``.
    Right side (m > k): eigenvectors ``V`` of ``M^T M`` (k + d square, bordered by ``A^T T``)
    give ``U = M V / s``.
    """

    exact = True

    def __init__(self, A, r, xp):
        self.A, self.r, self.xp = A, r, xp
        m, k = A.shape
        self.side = "left" if m <= k else "right"
        self.G = _dense(A @ A.T if self.side == "left" else A.T @ A, xp)

    def project(self, T, c):
        xp, A, r = self.xp, self.A, self.r
        if self.side == "left":
            s, U = _top_eigh(self.G + (c * c) * (T @ T.T), r, xp)
            return Basis(U, s)
        B = _dense(A.T @ T, xp)
        top = xp.concat([self.G, c * B], axis=1)
        bottom = xp.concat([c * B.T, (c * c) * (T.T @ T)], axis=1)
        s, V = _top_eigh(xp.concat([top, bottom], axis=0), r, xp)
        k = self.G.shape[0]
        Va, Vt = V[:k, :], V[k:, :]
        # directions with zero singular value (rank-deficient data) are dropped, not blown up
        inv_s = xp.where(s > s[0] * 1e-10, 1.0 / xp.where(s > 0, s, 1.0), 0.0)
        U = (_dense(A @ Va, xp) + c * (T @ Vt)) * inv_s[None, :]
        E = (self.G @ Va + c * (B @ Vt)) * inv_s[None, :]
        return Basis(U, s, E)

    def quad(self, b1, b2):
        if self.side == "left":
            return b1.U.T @ (self.G @ b2.U)
        return b1.E.T @ b2.E


class SubspaceProjector:
    """Warm-started randomized subspace iteration on ``M M^T = A A^T + c^2 T T^T``.

    Keeps an orthonormal basis ``Q`` of ``r + oversample`` columns between calls; the first call
    runs ``n_power_init`` power steps from a Gaussian start, later calls ``n_power`` steps from
    the previous basis. Works with SciPy sparse ``A`` (only products with ``A`` are used).
    """

    exact = False

    def __init__(self, A, r, xp, random_state, oversample=10, n_power_init=2, n_power=1):
        self.A, self.r, self.xp = A, r, xp
        self.rng = random_state
        self.width = min(r + oversample, min(A.shape))
        self.n_power_init, self.n_power = n_power_init, n_power
        self.Q = None
        self.AtQ = None

    def project(self, T, c):
        xp, A = self.xp, self.A
        if self.Q is None:
            start = self.rng.standard_normal((A.shape[0], self.width))
            Q = xp.asarray(start, dtype=T.dtype, device=device_of(T))
            AtQ, steps = _dense(A.T @ Q, xp), self.n_power_init
        else:
            Q, AtQ, steps = self.Q, self.AtQ, self.n_power
        for _ in range(steps):
            Q, _ = xp.linalg.qr(_dense(A @ AtQ, xp) + (c * c) * (T @ (T.T @ Q)))
            AtQ = _dense(A.T @ Q, xp)
        # Rayleigh-Ritz on the small subspace
        TtQ = T.T @ Q
        s, V = _top_eigh(AtQ.T @ AtQ + (c * c) * (TtQ.T @ TtQ), self.width, xp)
        self.Q, self.AtQ = Q @ V, AtQ @ V
        r = self.r
        return Basis(self.Q[:, :r], s[:r], self.AtQ[:, :r])

    def quad(self, b1, b2):
        return b1.E.T @ b2.E


def make_projector(A, r, method, xp, random_state, oversample=10):
    """Build the projector named by ``method`` ('auto', 'gram' or 'subspace').

    'auto' weighs one iteration of each: the exact projector solves an eigenproblem of the
    smaller side ``s = min(m, k)`` of ``A`` (``s^3`` flops), the subspace iteration makes about
    two passes over ``A`` with ``r + oversample`` columns. It takes the exact one when
    ``s <= 4 (r + oversample)``, where the eigenproblem is the cheaper of the two.
    """
    if method == "auto":
        method = "gram" if min(A.shape) <= 4 * (r + oversample) else "subspace"
    if method == "gram":
        return GramProjector(A, r, xp)
    if method == "subspace":
        return SubspaceProjector(A, r, xp, random_state, oversample=oversample)
    raise ValueError(f"projection must be 'auto', 'gram' or 'subspace', got {method!r}.")


def change_energy(projector, new, old):
    """``||U_n U_n^T A - U_o U_o^T A||_F^2``: how far the reconstruction block moved."""
    xp = projector.xp
    cross = xp.sum((new.U.T @ old.U) * projector.quad(new, old))
    value = xp.linalg.trace(projector.quad(new, new)) + xp.linalg.trace(projector.quad(old, old)) - 2.0 * cross
    return max(float(value), 0.0)


def residual_energy(projector, basis, sq_norm_A):
    """``||A - U U^T A||_F^2`` from the Gram quantities."""
    return max(sq_norm_A - float(projector.xp.linalg.trace(projector.quad(basis, basis))), 0.0)

