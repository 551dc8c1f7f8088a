"""A small ridge logistic regression solved by Newton-CG: the classifier block of the solvers.

Given a design ``D = [features, X_aux, 1]`` (n, r + q + 1) with few columns, minimise over
``V = [beta; gamma; b]``::

    sum_i w_i l(y_i, D_i V) + alpha/2 (beta^T Q beta + ||gamma||^2)

BCD uses it for its classifier block; LPGD uses it to refit the classifier inside the current
rank-r subspace after each projection. Only Hessian-vector products are formed, so the cost of
a Newton step is a few products with the thin design, for any number of classes.
"""

import math

from ._objective import class_probabilities, logistic_loss_grad
from ._problem import top_eigenvalue


class LogisticBlock:
    """Ridge multinomial logistic regression on a small design matrix (BCD's classifier block)."""

    def __init__(self, design, Q, r, q, problem, xp):
        self.design, self.Q, self.r, self.q = design, Q, r, q
        self.pb, self.xp = problem, xp

    def ridge(self, V):
        """``d/dV`` of ``1/2 (beta^T Q beta + ||gamma||^2)``: the intercept row is free."""
        xp, r, q = self.xp, self.r, self.q
        return xp.concat([self.Q @ V[:r, :], V[r:r + q, :], xp.zeros_like(V[-1:, :])], axis=0)

    def evaluate(self, V):
        """Value, gradient and class probabilities at ``V``."""
        pb, xp = self.pb, self.xp
        S = self.design @ V
        loss, G = logistic_loss_grad(S, pb.Y, pb.w, xp)
        R = self.ridge(V)
        value = loss + 0.5 * pb.alpha * float(xp.sum(V * R))
        P = (G / pb.w[:, None]) + pb.Y if float(xp.min(pb.w)) > 0 else class_probabilities(S, xp)[0]
        return value, self.design.T @ G + pb.alpha * R, P

    def hessian_product(self, P, D):
        """Hessian times direction ``D``: per sample ``(diag(p) - p p^T) s`` with ``s = z^T D``."""
        pb, xp = self.pb, self.xp
        M = P * (self.design @ D)
        curvature = M - P * xp.sum(M, axis=1, keepdims=True)
        return self.design.T @ (pb.w[:, None] * curvature) + pb.alpha * self.ridge(D)

    def lipschitz(self):
        pb, xp = self.pb, self.xp
        bound = pb.curvature * top_eigenvalue(self.design.T @ (pb.w[:, None] * self.design), xp)
        return bound + pb.alpha * max(top_eigenvalue(self.Q, xp), 1.0)

    def newton(self, V, steps):
        """Truncated Newton-CG with Armijo backtracking (monotone). Returns the new point
        and the gradient norm at the start (the block's stationarity measure)."""
        xp = self.xp
        value, grad, P = self.evaluate(V)
        first = math.sqrt(float(xp.sum(grad * grad)))
        for _ in range(steps):
            gnorm = math.sqrt(float(xp.sum(grad * grad)))
            if gnorm <= 1e-12 * max(1.0, abs(value)):
                break
            direction = self._conjugate_gradient(P, grad, gnorm)
            slope = float(xp.sum(grad * direction))
            t = 1.0
            while t > 1e-10:
                candidate = V + t * direction
                new_value = self.evaluate(candidate)[0]
                if new_value <= value + 1e-4 * t * slope:
                    break
                t *= 0.5
            else:
                break
            V = candidate
            value, grad, P = self.evaluate(V)
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
            if curvature <= 0:
                break
            step = rs / curvature
            d = d + step * p
            residual = residual - step * Hp
            rs_new = float(xp.sum(residual * residual))
            if math.sqrt(rs_new) <= tol:
                break
            p = residual + (rs_new / rs) * p
            rs = rs_new
        return d if float(xp.sum(d * d)) > 0 else -grad
