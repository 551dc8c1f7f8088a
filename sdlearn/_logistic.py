"""A small ridge logistic regression solved by Newton-CG: the classifier block of the solvers.

Given a design ``D = [features, X_aux, 1]`` (n, r + q + 1) with few columns, minimise over
``V = [beta; gamma; b]`` (in the solvers' coordinates, see :mod:`sdlearn._problem`)::

    sum_i w_i l(y_i, D_i V R) + 1/2 (main tr(beta^T Q beta) + sum_j aux_j ||gamma_j||^2)

with ``R`` the problem's score map. BCD uses it for its classifier block; LPGD uses it to refit
the classifier inside the current rank-r subspace after each projection. Only Hessian-vector
products are formed, so the cost of a Newton step is a few products with the thin design, for
any number of classes.
"""

import math

import numpy as np

from ._objective import class_probabilities, logistic_loss_grad

_ARMIJO_HALVINGS = 34  # the line search gives up below a step of 1e-10
_MAX_STRETCH = 1e4  # longest Newton step relative to 1 + the size of the point
_MAX_CG_STEP = 1e30  # a conjugate-gradient step this long means zero curvature: stop there
_HESSIAN_ENTRIES = 1 << 21  # entries of the per-sample curvature blocks formed at once in a chunk


class LogisticBlock:
    """Ridge multinomial logistic regression on a small design matrix (the classifier block).

    Parameters
    ----------
    design : array of shape (n, r + q + 1)
        ``[features, X_aux, 1]``.
    Q : array of shape (r, r)
        Metric of the ridge on ``beta`` (``W^T W``, ``C^T C`` or the identity).
    r, q : int
        Numbers of feature and covariate columns.
    problem : Problem
        Labels, weights, ridge weights and score map.
    """

    def __init__(self, design, Q, r, q, problem):
        self.design, self.Q, self.r, self.q = design, Q, r, q
        self.pb, self.xp = problem, problem.xp
        self.positive_weights = problem.min_weight > 0

    def known_loss(self, V):
        """The loss at ``V`` if this block already computed it without a pass over the rows
        (never, in memory; see the distributed block)."""
        return None

    def ridge(self, V):
        """Gradient of the penalty at ``V`` (it is quadratic): the intercept row is free."""
        xp, r, q, ridge = self.xp, self.r, self.q, self.pb.ridge
        parts = [ridge.main * (self.Q @ V[:r, :])]
        if q:
            aux = ridge.aux * V[r:r + q, :] if isinstance(ridge.aux, float) else ridge.aux[:, None] * V[r:r + q, :]
            parts.append(aux)
        parts.append(xp.zeros_like(V[-1:, :]))
        return xp.concat(parts, axis=0)

    def _contrast(self, V):
        """``V R``: the score map applied on the small side (``design @ (V R)`` costs no more
        than ``design @ V``; ``(design @ V) R`` would add an ``n x d x d`` product)."""
        return V if self.pb.score_map is None else V @ self.pb.score_map

    def evaluate(self, V):
        """Value, gradient and contrast probabilities at ``V``."""
        pb, xp = self.pb, self.xp
        S = self.design @ self._contrast(V)  # contrast scores
        loss, G = logistic_loss_grad(S, pb.Y, pb.w, xp)
        R = self.ridge(V)
        value = loss + 0.5 * float(xp.sum(V * R))
        if self.positive_weights:  # probabilities from the gradient, without another exp
            P = G / pb.w[:, None] + pb.Y
        else:
            P = class_probabilities(S, xp)[0]
        return value, self._contrast(self.design.T @ G) + R, P

    def hessian_product(self, P, D):
        """Hessian times direction ``D``: per sample ``(diag(p) - p p^T) s`` with ``s = z^T D R``
        on the contrasts, mapped back by ``R`` (symmetric)."""
        pb, xp = self.pb, self.xp
        M = P * (self.design @ self._contrast(D))
        curvature = pb.w[:, None] * (M - P * xp.sum(M, axis=1, keepdims=True))
        return self._contrast(self.design.T @ curvature) + self.ridge(D)

    def newton(self, V, steps):
        """Truncated Newton-CG with Armijo backtracking (monotone). Returns the new point
        and the gradient norm at the start (the block's stationarity measure)."""
        xp = self.xp
        value, grad, P = self.evaluate(V)
        first = math.sqrt(float(xp.sum(grad * grad)))
        for _ in range(steps):
            gnorm = math.sqrt(float(xp.sum(grad * grad)))
            if not gnorm > 1e-12 * max(1.0, abs(value)):  # stationary (or not finite)
                break
            direction = self._conjugate_gradient(P, grad, gnorm)
            # a Newton direction along a flat (separable) direction can be astronomically long:
            # no useful step moves the point by more than 1e4 times its size
            size = math.sqrt(float(xp.sum(direction * direction)))
            cap = _MAX_STRETCH * (1.0 + math.sqrt(float(xp.sum(V * V))))
            if size > cap:
                direction = direction * (cap / size)
            slope = float(xp.sum(grad * direction))
            if not (slope < 0 and math.isfinite(slope)):
                break
            t, accepted = 1.0, None
            for _ in range(_ARMIJO_HALVINGS):
                trial = V + t * direction
                evaluated = self.evaluate(trial)  # kept: the next step starts from it
                if evaluated[0] <= value + 1e-4 * t * slope:
                    accepted = trial, evaluated
                    break
                t *= 0.5
            if accepted is None:
                break
            V, (value, grad, P) = accepted
        return V, first

    def _conjugate_gradient(self, P, grad, gnorm, max_iter=10):
        """Approximate Newton direction: solve ``H d = -grad`` by CG to a forcing tolerance."""
        xp = self.xp
        tol = min(0.5, math.sqrt(gnorm)) * gnorm
        d = xp.zeros_like(grad)
        residual = -grad
        p = residual
        rs = float(xp.sum(residual * residual))
        for _ in range(max_iter):
            Hp = self.hessian_product(P, p)
            curvature = float(xp.sum(p * Hp))
            if not curvature > 0:
                break
            step = rs / curvature
            if not step * math.sqrt(float(xp.sum(p * p))) < _MAX_CG_STEP:  # flat direction: stop
                break
            d = d + step * p
            residual = residual - step * Hp
            rs_new = float(xp.sum(residual * residual))
            if math.sqrt(rs_new) <= tol:
                break
            p = residual + (rs_new / rs) * p
            rs = rs_new
        return d if float(xp.sum(d * d)) > 0 else -grad


def logistic_block(design, Q, r, q, problem):
    """The classifier block of ``problem``: a :class:`LogisticBlock`, or for rows on a dask
    cluster its distributed form (each evaluation one pass over the design's row chunks, the
    conjugate gradients on the exact Hessian, with no further round trips)."""
    if problem.distributed:
        from ._dask_logistic import DistributedLogisticBlock

        return DistributedLogisticBlock(design, Q, r, q, problem)
    return LogisticBlock(design, Q, r, q, problem)


def block_statistics(Z, Y, w, *, VR, R):
    """``[loss, Z^T G (flattened), Hessian (flattened)]`` of the weighted logistic loss of one
    row chunk (or batch) of the design ``Z`` at contrast weights ``VR = V R`` (``R`` the
    symmetric score map, ``None`` for the identity): ``G`` is the gradient in the contrast
    scores ``Z VR`` (``Z^T G R`` the gradient in ``V``), the Hessian is in ``vec(V)``
    (row-major): ``sum_i w_i (z_i z_i^T) kron (R C_i R)``, ``C_i = diag(p_i) - p_i p_i^T``."""
    D, d = VR.shape
    S = Z @ VR
    loss, G = logistic_loss_grad(S, Y, w, np)
    P = class_probabilities(S, np)[0]
    H = np.zeros((D, d, D, d))
    rows = max(1, _HESSIAN_ENTRIES // (D * d * d))  # slices bound the n x D x d x d temporaries
    for start in range(0, Z.shape[0], rows):
        part = slice(start, start + rows)
        p = P[part]
        # per sample w_i R (diag(p_i) - p_i p_i^T) R (symmetric d x d)
        C = w[part, None, None] * (p[:, :, None] * np.eye(d)[None] - p[:, :, None] * p[:, None, :])
        if R is not None:
            C = np.einsum("jl,nlm,mk->njk", R, C, R)
        H += np.einsum("na,nb,njk->akbj", Z[part], Z[part], C, optimize=True)
    return np.concatenate([[loss], (Z.T @ G).ravel(), H.ravel()])
