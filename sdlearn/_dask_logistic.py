"""The classifier block on a dask cluster: one pass over the design's row chunks per evaluation.

:class:`~sdlearn._logistic.LogisticBlock` runs Newton-CG with Hessian-vector products, each a
pass over the design ``D = [features, X_aux, 1]`` (n x (r + q + 1)): on a cluster, a round trip
per conjugate-gradient iteration. Here each evaluation also sums, over the row chunks, the exact
Hessian ``sum_i w_i (z_i z_i^T) kron (R C_i R)`` (``C_i = diag(p_i) - p_i p_i^T``), a matrix of
``(r + q + 1)(K - 1)`` rows, and the conjugate gradients multiply by it on the caller's side:
one round trip per evaluation (one per Newton step), the same Newton directions up to rounding.
"""

import numpy as np

from . import _dask
from ._logistic import LogisticBlock, block_statistics
from ._rows import host, keep

class DistributedLogisticBlock(LogisticBlock):
    """:class:`~sdlearn._logistic.LogisticBlock` over a row-chunked dask design (see the module
    docstring). ``evaluate`` returns the Hessian in place of the probabilities, and
    ``hessian_product`` multiplies by it."""

    def __init__(self, design, Q, r, q, problem):
        super().__init__(keep(design), Q, r, q, problem)

    def evaluate(self, V):
        """Value, gradient and the Hessian of the loss at ``V`` (one round trip)."""
        pb, xp = self.pb, self.xp
        D, d = V.shape
        VR = np.asarray(self._contrast(V))
        R = None if pb.score_map is None else np.asarray(pb.score_map)
        size = 1 + D * d + (D * d) ** 2
        packed = host(_dask.sum_rows(block_statistics, self.design, pb.Y, pb.w, shape=(size,), VR=VR, R=R))
        loss, ZtG, H = packed[0], packed[1:1 + D * d].reshape(D, d), packed[1 + D * d:].reshape(D * d, D * d)
        ridge = self.ridge(V)
        self._last = (V, float(loss))
        value = float(loss) + 0.5 * float(xp.sum(V * ridge))
        return value, self._contrast(xp.asarray(ZtG, dtype=V.dtype)) + ridge, xp.asarray(H, dtype=V.dtype)

    def known_loss(self, V):
        """The loss at ``V`` if the last evaluation was there (a float), else ``None``."""
        last = getattr(self, "_last", None)
        return last[1] if last is not None and last[0] is V else None

    def hessian_product(self, H, D):
        """Hessian (of the loss, from :meth:`evaluate`) times ``D``, plus the ridge's."""
        return (H @ D.reshape(-1)).reshape(D.shape) + self.ridge(D)
