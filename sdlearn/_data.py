"""The data matrix as the solvers see it: rescaled, and read only through a few operations.

The solvers never touch ``X`` directly. They receive a :class:`DataMatrix` that stands for
``X / scale``, where ``scale`` is the power of two nearest the root mean square of the entries
of ``X``, so the problem the solvers work on has entries of order one whatever the units of
``X`` (1e-300 or 1e300 alike), and they use only

* products with thin matrices, ``A @ V`` and ``A.T @ G`` (``A`` the matrix or its transpose);
* the Gram matrix ``A @ A.T`` of one side (the exact projector of small problems);
* the squared Frobenius norm.

Multiplying by a power of two is exact in floating point, so while the products cannot
overflow or underflow the scale is applied to their (thin) results and ``X`` is never copied;
for data near the limits of the float range a scaled copy is made once. Distributed data (row
blocks on a cluster) only needs another class with these few methods.
"""

import math

import numpy as np
import scipy.sparse as sp

from sklearn.utils.validation import check_non_negative

from ._backend import SQUARED_NORM_BLOCK, device_of, squared_norm
from ._rows import hosts, is_dask


class DataMatrix:
    """``X / scale`` (or its transpose) behind products, Gram matrices and the squared norm.

    Parameters
    ----------
    X : array or SciPy sparse matrix of shape (n, p)
        The data, finite and of a real floating dtype (not modified).
    xp : module
        Array namespace of the products' results.
    scale : float, default=1.0
        A power of two; the matrix represented is ``X / scale``.
    sq_norm : float, default=None
        ``||X / scale||_F^2`` if already known.
    """

    def __init__(self, X, xp, scale=1.0, sq_norm=None, *, transposed=False):
        factor = 1.0 / scale
        if factor != 1.0 and not safe_exponent(scale, X, xp):
            X, factor = times_power_of_two(X, -_exponent(scale), xp), 1.0
        self.X, self.xp, self.factor, self.transposed = X, xp, factor, transposed
        self.scale = scale
        self._sq_norm = sq_norm

    @property
    def shape(self):
        n, p = self.X.shape
        return (p, n) if self.transposed else (n, p)

    @property
    def dtype(self):
        return self.X.dtype

    @property
    def T(self):
        """The transpose (same data, no copy)."""
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        view.transposed = not self.transposed
        return view

    def __matmul__(self, V):
        """``A @ V`` for a thin dense ``V``, as a dense array of the namespace."""
        out = (self.X.T @ V) if self.transposed else (self.X @ V)
        return self._scaled(self._dense(out), self.factor)

    def gram(self):
        """``A @ A.T`` as a dense array (``m x m`` for ``A`` of shape ``(m, k)``)."""
        X = self.X
        G = self._dense(X.T @ X if self.transposed else X @ X.T)
        return self._scaled(G, self.factor * self.factor)

    @staticmethod
    def _scaled(out, factor):
        """``out * factor`` in place: ``out`` is a fresh product, and a scaled copy would double
        the memory of every product with ``X``."""
        if factor != 1.0:
            out *= factor
        return out

    def squared_norm(self):
        """``||A||_F^2`` as a Python float."""
        if self._sq_norm is None:
            self._sq_norm = squared_norm(self.X, self.xp) * self.factor * self.factor
        return self._sq_norm

    # -- what the distributed implementation (sdlearn._dask_data.DaskDataMatrix) does otherwise --
    #: whether the rows live on a cluster (products with the samples' side are then lazy)
    distributed = False

    @property
    def samples_first(self):
        """Whether the first axis of ``A`` runs over the samples (``A = X``, not ``X.T``)."""
        return not self.transposed

    def lazy_matmul(self, V):
        """``A @ V``, which a distributed matrix leaves lazy to compute it with other values
        in one round trip (:func:`sdlearn._rows.hosts`); here the product itself."""
        return self @ V

    def zeros(self, k, dtype=None):
        """Zeros of shape ``(m, k)`` laid out like the first axis of ``A`` (shape ``(m, _)``)."""
        return self.xp.zeros((self.shape[0], k), dtype=self.dtype if dtype is None else dtype,
                             device=device_of(self.X))

    def ones(self, k, dtype=None):
        """Ones of shape ``(m, k)`` laid out like the first axis of ``A``."""
        return self.xp.ones((self.shape[0], k), dtype=self.dtype if dtype is None else dtype,
                            device=device_of(self.X))

    def standard_normal(self, rng, k, dtype=None, scale=1.0):
        """``scale * rng.standard_normal((m, k))`` laid out like the first axis of ``A``."""
        return self.xp.asarray(scale * rng.standard_normal((self.shape[0], k)),
                               dtype=self.dtype if dtype is None else dtype, device=device_of(self.X))

    def check_non_negative(self, whom):
        """Raise a ``ValueError`` naming ``whom`` if ``A`` has a negative entry."""
        check_non_negative(self.X, whom)

    def own_scale(self):
        """The scale :func:`data_scale` gives the matrix represented (``X / scale``): a stream
        checks with it that a batch keeps the units of the first one."""
        return data_scale(self.X, self.xp)[0] * self.factor

    def _dense(self, a):
        if sp.issparse(a):
            a = a.toarray()
        return self.xp.asarray(a) if sp.issparse(self.X) else a


def _exponent(scale):
    """``k`` with ``scale = 2**k`` (``scale`` a power of two)."""
    return math.frexp(scale)[1] - 1


def safe_exponent(scale, X, xp):
    """Whether products of ``X`` with thin matrices of order one stay far from overflow and
    underflow for data of this scale: a quarter of the dtype's exponent range."""
    return abs(_exponent(scale)) <= max_exponent_of(X, xp) // 4


def times_power_of_two(A, k, xp):
    """``A * 2**k`` (a copy unless ``k == 0``; exact unless the result leaves the float range),
    in steps whose factors are representable (``2**1074`` is not)."""
    if sp.issparse(A):
        A = A.copy()
        A.data = times_power_of_two(A.data, k, np)
        return A
    largest = max_exponent_of(A, xp) // 2 - 1  # 2**largest is a float of A's dtype (511 for float64)
    while k != 0:
        part = max(-largest, min(k, largest))
        A = A * math.ldexp(1.0, part)
        k -= part
    return A


def power_of_two_scale(rms):
    """The power of two nearest ``rms`` (``1.0`` for zero or a non-finite value)."""
    if not (rms > 0 and math.isfinite(rms)):
        return 1.0
    return math.ldexp(1.0, round(math.log2(rms)))


def data_scale(X, xp):
    """Scale of ``X`` for :class:`DataMatrix`: the power of two nearest the root mean square of
    its entries, and ``||X / scale||_F^2``.

    Data at any scale gives the same rounding: the squares are summed in the same order, on
    ``X`` itself when they can neither overflow nor underflow (one pass, no copy: the usual
    case), otherwise on a copy of ``X`` brought to unit scale by a power of two.
    """
    n_entries = X.shape[0] * X.shape[1]
    if n_entries == 0:
        return 1.0, 0.0
    max_exponent = max_exponent_of(X, xp)
    if isinstance(X, np.ndarray):
        # vdot (BLAS) neither warns nor fails when it overflows: try the one pass first
        total = squared_norm(X, xp)
        if plain_sum_is_accurate(total, n_entries, max_exponent):
            return from_sum(total, n_entries, 0)
    return scale_from_largest(max_abs(X, xp), n_entries, max_exponent, lambda: squared_norm(X, xp),
                              lambda k: scaled_squared_norm(X, k, xp))


def plain_sum_is_accurate(total, n_entries, max_exponent):
    """Whether a plain sum of squares gives the scale: finite, and with a mean square above
    which the squares that the sum's rounding sees are normal numbers."""
    return math.isfinite(total) and total > math.ldexp(n_entries, -(7 * max_exponent) // 8)


def scale_from_largest(largest, n_entries, max_exponent, plain_total, scaled_total):
    """The rest of :func:`data_scale` from the largest absolute entry: the plain sum of squares
    (``plain_total()``) when the entries are far from the float range's limits, else the sum
    of squares of ``X * 2**k`` (``scaled_total(k)``). Shared with the distributed data, which
    computes the sums chunk by chunk."""
    if largest == 0.0:
        return 1.0, 0.0
    e = math.frexp(largest)[1]  # largest < 2**e
    if abs(e) <= max_exponent // 4:
        return from_sum(plain_total(), n_entries, 0)
    return from_sum(scaled_total(-e), n_entries, e)


def max_exponent_of(X, xp):
    """``e`` with ``2**e`` just above the largest float of ``X``'s dtype (1024 for float64)."""
    finfo = np.finfo(X.dtype) if sp.issparse(X) else xp.finfo(X.dtype)
    return math.frexp(float(finfo.max))[1]


def from_sum(total, n_entries, shift):
    """Scale and rescaled squared norm from the sum of squares of ``X * 2**-shift``."""
    scale = math.ldexp(power_of_two_scale(math.sqrt(total / n_entries)), shift)
    # ||X / scale||^2 = total * 2**(2 (shift - log2 scale)), exact in powers of two
    return scale, math.ldexp(total, 2 * (shift - _exponent(scale)))


def max_abs(X, xp):
    """Largest absolute entry of ``X`` as a float, without allocating ``|X|``."""
    if sp.issparse(X):
        data = X.data
        return float(max(data.max(), -data.min())) if data.size else 0.0
    if math.prod(X.shape) == 0:
        return 0.0
    if is_dask(X):  # both ends in one round trip
        top, bottom = hosts(X.max(), X.min())
        return float(max(float(top), -float(bottom)))
    return float(max(float(xp.max(X)), -float(xp.min(X))))


def scaled_squared_norm(X, k, xp):
    """``||X * 2**k||_F^2`` summed like :func:`~sdlearn._backend.squared_norm` sums ``X``
    (same order, so the same rounding), on a scaled copy."""
    if sp.issparse(X):
        if not getattr(X, "has_canonical_format", True):
            X = X.copy()
            X.sum_duplicates()
        values = times_power_of_two(np.asarray(X.data), k, np)
        return float(values @ values)
    if isinstance(X, np.ndarray):
        return squared_norm(times_power_of_two(X, k, xp), xp)
    total, block_rows = 0.0, SQUARED_NORM_BLOCK
    for start in range(0, X.shape[0], block_rows):
        block = times_power_of_two(X[start:min(start + block_rows, X.shape[0]), ...], k, xp)
        total += float(xp.sum(block * block))
    return total


def column_scales(A, xp):
    """Power-of-two scale of each column of a small dense ``A`` (the auxiliary covariates):
    nearest the column's root mean square, 1 for an all-zero column. Returns a host array."""
    n = A.shape[0]
    if is_dask(A):  # the same reductions over the row chunks, on the cluster
        from ._dask_problem import column_scales_of_rows

        return column_scales_of_rows(A)
    largest = np.asarray([max_abs(A[:, j:j + 1], xp) for j in range(A.shape[1])])
    return column_scales_from(largest, n, lambda shifts: scaled_column_squares(A, shifts, xp))


def column_exponents(largest):
    """``e_j`` with ``largest_j < 2**e_j`` (0 for an all-zero column)."""
    return [math.frexp(float(m))[1] if m != 0.0 else 0 for m in largest]


def scaled_column_squares(A, exponents, xp):
    """Sum of squares of each column ``j`` of ``A * 2**-exponents[j]`` (host array)."""
    sums = []
    for j, e in enumerate(exponents):
        column = times_power_of_two(A[:, j], -e, xp)
        sums.append(float(xp.sum(column * column)))
    return np.asarray(sums)


def column_scales_from(largest, n, column_squares):
    """:func:`column_scales` from the largest absolute entry of each column and
    ``column_squares(exponents)`` (the sums of :func:`scaled_column_squares`), which the
    distributed data computes chunk by chunk."""
    exponents = column_exponents(largest)
    sums = column_squares(exponents)
    scales = np.ones(len(largest))
    for j, m in enumerate(largest):
        if m == 0.0:
            continue
        scales[j] = math.ldexp(power_of_two_scale(math.sqrt(float(sums[j]) / n)), exponents[j])
    return scales


def scale_columns(A, scales, xp):
    """``A / scales`` column by column (exact: powers of two; a copy)."""
    columns = [times_power_of_two(A[:, j:j + 1], -_exponent(float(s)), xp) for j, s in enumerate(scales)]
    return xp.concat(columns, axis=1) if columns else A
