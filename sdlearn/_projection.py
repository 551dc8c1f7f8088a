"""Rank-r projection of a data matrix with a few columns appended: the cost centre of LPGD.

LPGD projects ``M = [A, c T]`` onto rank ``r``, where ``A`` is fixed (``X^T`` in filter mode,
``X`` in feature mode, shape (m, k)) and ``T`` (m, d) is a thin block with ``d = K - 1``
columns. The best rank-r approximation is ``U U^T M`` with ``U`` the top-r left singular
vectors of ``M``; only ``U`` is needed, never the dense ``m x k`` product.

Two projectors:

* :class:`GramProjector` (exact): precomputes the Gram matrix of ``A`` on its smaller side once
  and solves a symmetric eigenproblem of that size per iteration.
* :class:`SubspaceProjector` (approximate, for large or sparse ``A``): a warm-started block
  eigensolver on products with ``A`` (one power step plus a locally optimal search direction per
  call, as in LOBPCG), two passes over ``A`` per iteration.

Both return a :class:`Basis` and answer ``quad(b1, b2) = U1^T A A^T U2``, which gives the
reconstruction error ``||A - U U^T A||^2 = ||A||^2 - tr(quad(b, b))`` without the residual.
"""

from dataclasses import dataclass
from typing import Any

from ._backend import device_of
from ._data import DataMatrix


@dataclass
class Basis:
    """Orthonormal basis ``U`` (m, r) of the projection, singular values ``s`` of ``M`` and
    ``E = A^T U`` (k, r) when it came for free (``None`` otherwise).

    The subspace projector also keeps its whole Ritz basis ``Q`` (m, r + oversample) with
    ``AtQ = A^T Q``, the search direction ``P`` with ``AtP = A^T P`` (the part of ``Q`` that
    came from outside the previous subspace), and caches ``A A^T Q`` (independent of ``T``) the
    first time a later projection starts from this basis, so that backtracking trials share it.
    """

    U: Any
    s: Any
    E: Any = None
    Q: Any = None
    AtQ: Any = None
    P: Any = None
    AtP: Any = None
    AAtQ: Any = None


def _top_eigh(G, r, xp):
    """Top-r eigenpairs of a symmetric matrix, largest first."""
    evals, evecs = xp.linalg.eigh(G)
    evals = xp.flip(evals[-r:], axis=0)
    evecs = xp.flip(evecs[:, -r:], axis=1)
    return xp.sqrt(xp.clip(evals, 0.0, None)), evecs


def _weights(c):
    """``(a, b)`` with ``[a A, b T]`` proportional to ``[A, c T]`` and both at most one: the
    same left singular subspace (singular values divided by ``a``), and no overflow however
    large ``c`` is. ``(1, c)`` for ``c <= 1``."""
    return (1.0, c) if c <= 1.0 else (1.0 / c, 1.0)


def as_operator(A, xp):
    """``A`` as a :class:`~sdlearn._data.DataMatrix` (the projectors read it only through
    products and Gram matrices)."""
    return A if isinstance(A, DataMatrix) else DataMatrix(A, xp)


class GramProjector:
    """Exact projection through the Gram matrix of ``A`` on its smaller side.

    Left side (m <= k): eigenvectors of ``A A^T + c^2 T T^T`` (m x m) are ``U``.
    Right side (m > k): eigenvectors ``V`` of ``M^T M`` (k + d square, bordered by ``A^T T``)
    give ``U = M V / s``.
    """

    exact = True

    def __init__(self, A, r, xp):
        A = as_operator(A, xp)
        self.A, self.r, self.xp = A, r, xp
        m, k = A.shape
        self.side = "left" if m <= k else "right"
        self.G = A.gram() if self.side == "left" else A.T.gram()

    def project(self, T, c, warm=None):
        """Exact projection of ``[A, c T]`` (``warm`` is accepted and ignored)."""
        xp, A, r = self.xp, self.A, self.r
        a, b = _weights(c)
        if self.side == "left":
            s, U = _top_eigh((a * a) * self.G + (b * b) * (T @ T.T), r, xp)
            return Basis(U, s / a)
        B = A.T @ T
        top = xp.concat([(a * a) * self.G, (a * b) * B], axis=1)
        bottom = xp.concat([(a * b) * B.T, (b * b) * (T.T @ T)], axis=1)
        s, V = _top_eigh(xp.concat([top, bottom], axis=0), r, xp)
        k = self.G.shape[0]
        Va, Vt = V[:k, :], V[k:, :]
        # directions with zero singular value (rank-deficient data) are dropped, not blown up
        inv_s = xp.where(s > s[0] * 1e-10, 1.0 / xp.where(s > 0, s, 1.0), 0.0)
        U = (a * (A @ Va) + b * (T @ Vt)) * inv_s[None, :]
        E = (a * (self.G @ Va) + b * (B @ Vt)) * inv_s[None, :]
        return Basis(U, s / a, E)

    def quad(self, b1, b2):
        if self.side == "left":
            return b1.U.T @ (self.G @ b2.U)
        return b1.E.T @ b2.E


def _orthonormalize(Y, AtY, basis, xp, rtol=1e-12):
    """Orthonormal basis of the part of ``span(Y)`` orthogonal to ``basis = (B, AtB)``.

    Two rounds of projection against ``B`` and Gram eigendecomposition ("twice is enough"):
    matrix products only, several times cheaper than Householder QR on tall thin blocks.
    Columns are scaled to unit norm after the first projection, so graded columns (a power step
    multiplies them by the squared singular values) keep their directions. Dropped: columns that
    the projection reduced to rounding noise (already in ``span(B)``), directions whose Gram
    eigenvalue falls below ``rtol`` times the largest (they repeat others), and in the second
    round directions that lost half their length (noise that the first round blew up). The
    result may thus have fewer columns than ``Y``. ``AtY = A^T Y`` (or ``None``) receives the
    same operations, giving ``A^T`` of the result without a pass over ``A``.
    """
    B, AtB = basis
    rtol = max(rtol, 100.0 * float(xp.finfo(Y.dtype).eps))  # float32: keep the Gram well conditioned
    for round_ in range(2):
        before = xp.sum(Y * Y, axis=0)
        if B is not None:
            coef = B.T @ Y
            Y = Y - B @ coef
            if AtY is not None:
                AtY = AtY - AtB @ coef
        if round_ == 0:
            after = xp.sum(Y * Y, axis=0)
            real = after > (1e-20 * before)
            scale = xp.where(real, 1.0 / xp.sqrt(xp.where(real, after, 1.0)), 0.0)
            Y = Y * scale[None, :]
            AtY = None if AtY is None else AtY * scale[None, :]
        if Y.shape[1] == 0:
            break
        evals, evecs = xp.linalg.eigh(Y.T @ Y)
        floor = rtol * float(evals[-1]) if round_ == 0 else 0.5
        keep = int(xp.count_nonzero(evals > floor)) if float(evals[-1]) > 0 else 0
        transform = evecs[:, evecs.shape[1] - keep:] / xp.sqrt(evals[evals.shape[0] - keep:])[None, :]
        Y = Y @ transform
        AtY = None if AtY is None else AtY @ transform
    return Y, AtY


class SubspaceProjector:
    """Warm-started block eigensolver for the top of ``M M^T = A A^T + c^2 T T^T``.

    The first call runs ``n_power_init`` power steps from a Gaussian start of width
    ``r + oversample``. A later call starts from a basis ``warm`` (by default the last one
    returned) and runs one Rayleigh-Ritz step on ``span([U, P, Z])``: ``U`` the warm basis's own
    rank-r subspace, ``Z = M M^T Q`` a power step on its whole Ritz basis ``Q``, and ``P`` the
    direction its Ritz vectors last moved in (LOBPCG's three-term recurrence, which converges
    much faster than plain subspace iteration when the singular values are close, as in text
    data). Keeping ``U`` in the search space makes the new rank-r subspace capture at least as
    much of ``M`` as ``U`` does, so the projection is never worse than staying put: LPGD's
    descent guarantee holds without an exact SVD. ``A^T U`` and ``A^T P`` are carried along, so
    each call makes two passes over ``A``: ``A (A^T Q)``, cached on the warm basis and shared
    by all calls that start from it, and ``A^T`` of the new directions. Works with SciPy sparse
    ``A`` (only products with ``A`` are used).
    """

    exact = False

    def __init__(self, A, r, xp, random_state, oversample=10, n_power_init=2):
        A = as_operator(A, xp)
        self.A, self.r, self.xp = A, r, xp
        self.rng = random_state
        self.width = min(r + oversample, min(A.shape))
        self.n_power_init = n_power_init
        self.last = None

    def project(self, T, c, warm=None):
        """Rank-r basis of ``[A, c T]``, warm-started from ``warm`` (default: the last call)."""
        xp, A, r = self.xp, self.A, self.r
        a, b = _weights(c)
        warm = self.last if warm is None else warm
        if warm is None:
            start = self.rng.standard_normal((A.shape[0], self.width))
            Q = xp.asarray(start, dtype=T.dtype, device=device_of(T))
            AtQ = A.T @ Q
            for _ in range(self.n_power_init):
                # Householder QR keeps the full width even for rank-deficient data (first call only)
                Q, _ = xp.linalg.qr((a * a) * (A @ AtQ) + (b * b) * (T @ (T.T @ Q)))
                AtQ = A.T @ Q
            known = 0  # no columns of Q came from a previous subspace
        else:
            if warm.AAtQ is None:
                warm.AAtQ = A @ warm.AtQ
            Q, AtQ = warm.U, warm.E
            if warm.P is not None:
                P, AtP = _orthonormalize(warm.P, warm.AtP, (Q, AtQ), xp, rtol=1e-10)
                Q, AtQ = xp.concat([Q, P], axis=1), xp.concat([AtQ, AtP], axis=1)
            Z, _ = _orthonormalize((a * a) * warm.AAtQ + (b * b) * (T @ (T.T @ warm.Q)), None, (Q, None), xp)
            Q, AtQ = xp.concat([Q, Z], axis=1), xp.concat([AtQ, A.T @ Z], axis=1)
            known = r
        # Rayleigh-Ritz on the search space; keep the top `width` Ritz vectors for the next call
        TtQ = T.T @ Q
        s, V = _top_eigh((a * a) * (AtQ.T @ AtQ) + (b * b) * (TtQ.T @ TtQ), min(self.width, Q.shape[1]), xp)
        s = s / a
        P, AtP = None, None
        if known:  # the search direction: what the Ritz vectors gained from outside span(U)
            P, AtP = Q[:, known:] @ V[known:, :r], AtQ[:, known:] @ V[known:, :r]
        Q, AtQ = Q @ V, AtQ @ V
        self.last = Basis(Q[:, :r], s[:r], AtQ[:, :r], Q, AtQ, P, AtP)
        return self.last

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
        method = auto_projection(A.shape, r, oversample)
    if method == "gram":
        return GramProjector(A, r, xp)
    if method == "subspace":
        return SubspaceProjector(A, r, xp, random_state, oversample=oversample)
    raise ValueError(f"projection must be 'auto', 'gram' or 'subspace', got {method!r}.")


def auto_projection(shape, r, oversample=10):
    """What ``projection='auto'`` picks for ``A`` of this shape: 'gram' when the eigenproblem
    of its smaller side is the cheaper of the two, 'subspace' otherwise."""
    return "gram" if min(shape) <= 4 * (r + oversample) else "subspace"


def change_energy(projector, new, old):
    """``||U_n U_n^T A - U_o U_o^T A||_F^2``: how far the reconstruction block moved."""
    xp = projector.xp
    cross = xp.sum((new.U.T @ old.U) * projector.quad(new, old))
    value = xp.linalg.trace(projector.quad(new, new)) + xp.linalg.trace(projector.quad(old, old)) - 2.0 * cross
    return max(float(value), 0.0)


def residual_energy(projector, basis, sq_norm_A):
    """``||A - U U^T A||_F^2`` from the Gram quantities."""
    return max(sq_norm_A - float(projector.xp.linalg.trace(projector.quad(basis, basis))), 0.0)

