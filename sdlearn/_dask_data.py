"""The data matrix on a cluster: :class:`~sdlearn._data.DataMatrix` over a persisted dask array.

``X`` (n x p) is chunked by rows, dense or SciPy sparse chunks, and persisted once on the
workers. The solvers read it only through thin products, the Gram matrix of the features and
the squared norm, and here each splits over the row chunks:

* ``X @ V`` (``V`` p x k, small): one task per chunk, the result a row array (n x k) whose
  chunks stay on the workers next to the rows they came from;
* ``X.T @ G`` (``G`` a row array): one task per chunk, the p x k pieces summed by dask's tree
  reduction and only the sum sent to the caller;
* ``X.T @ X`` (p x p) and the statistics of the set-up (sum of squares, largest entry, non-finite
  and negative entries) the same way.

The Gram matrix of the samples (n x n) is not offered: it would have to gather n^2 numbers.
"""

import numpy as np
import scipy.sparse as sp

from . import _dask
from ._backend import squared_norm
from ._data import (
    DataMatrix,
    _exponent,
    from_sum,
    max_abs,
    max_exponent_of,
    plain_sum_is_accurate,
    safe_exponent,
    scale_from_largest,
    scaled_squared_norm,
    times_power_of_two,
)
from ._rows import host, hosts


def _dense(a):
    return np.asarray(a.toarray() if sp.issparse(a) else a)


def _times(x, V, factor):
    """``x @ V * factor`` for one chunk (as the in-memory product, then the exact scale)."""
    out = _dense(x @ V)
    if factor != 1.0:
        out *= factor
    return out


def _t_times(x, G):
    """``x.T @ G`` for one chunk."""
    return _dense(x.T @ G)


def _gradient_sums(x, G, X_aux=None, *, with_X):
    """``[x^T G; X_aux^T G; 1^T G]`` of one chunk (the parts that exist)."""
    parts = [_dense(x.T @ G)] if with_X else []
    if X_aux is not None:
        parts.append(X_aux.T @ G)
    parts.append(np.sum(G, axis=0)[None, :])
    return np.concatenate(parts, axis=0)


def _gram(x):
    return _dense(x.T @ x)


def _squared_norm(x):
    return squared_norm(x, np)


def _scaled_squares(x, k):
    return scaled_squared_norm(x, k, np)


def _power_of_two(x, k):
    return times_power_of_two(x, k, np)


def chunk_statistics(x):
    """``[sum of squares, largest |entry|, non-finite entries, negative entries]`` of a chunk."""
    values = x.data if sp.issparse(x) else x
    finite = np.isfinite(values)
    bad = int(values.size - np.count_nonzero(finite))
    if bad:  # the other statistics are meaningless: the set-up raises
        return np.asarray([0.0, 0.0, bad, 0.0])
    return np.asarray([squared_norm(x, np), max_abs(x, np), 0.0, float(np.count_nonzero(values < 0))])


def statistics(X):
    """Lazy ``(sum of squares, largest |entry|, non-finite count, negative count)`` of ``X``,
    one task per chunk and tree reductions (compute them with others in one round trip)."""
    per_chunk = _dask.stacked_rows(chunk_statistics, X, shape=(4,))
    return (per_chunk[:, 0].sum(), per_chunk[:, 1].max(), per_chunk[:, 2].sum(), per_chunk[:, 3].sum())


class DaskDataMatrix(DataMatrix):
    """``X / scale`` (or its transpose) for ``X`` a row-chunked dask array (see the module
    docstring): :class:`~sdlearn._data.DataMatrix`'s interface (``shape``, ``dtype``, ``T`` and
    ``samples_first`` inherited) with every product computed on the workers.

    Parameters
    ----------
    X : dask array of shape (n, p)
        Row chunks (one chunk along the columns) of a real floating dtype, dense or SciPy
        sparse; persisted by the caller.
    xp : module
        Namespace of the host results (NumPy).
    scale : float, default=1.0
        A power of two; the matrix represented is ``X / scale``.
    sq_norm : float, default=None
        ``||X / scale||_F^2`` if known.
    negatives : int, default=None
        Number of negative entries of ``X`` if known (for :meth:`check_non_negative`).
    own_scale : float, default=None
        The scale :func:`~sdlearn._data.data_scale` gives ``X`` itself, if known.
    """

    distributed = True

    def __init__(self, X, xp, scale=1.0, sq_norm=None, *, transposed=False, negatives=None, own_scale=None):
        factor = 1.0 / scale
        if factor != 1.0 and not safe_exponent(scale, X, xp):
            # as in memory: data near the limits of the float range is scaled once (here on the
            # workers, into a persisted copy)
            X = X.map_blocks(_power_of_two, k=-_exponent(scale), dtype=X.dtype, meta=X._meta).persist()
            factor = 1.0
        self.X, self.xp, self.factor, self.transposed = X, xp, factor, transposed
        self.scale = scale
        self._sq_norm = sq_norm
        self._negatives = negatives
        self._own_scale = own_scale

    @property
    def row_chunks(self):
        """Row chunk sizes of ``X``: the layout of every row array of the problem."""
        return self.X.chunks[0]

    def __matmul__(self, V):
        """``A @ V``: a lazy row array for ``A = X``, a host array for ``A = X.T`` (one round
        trip; use :meth:`lazy_matmul` to combine it with other values)."""
        out = self.lazy_matmul(V)
        return host(out) if self.transposed else out

    def lazy_matmul(self, V):
        """``A @ V`` as a dask array: the row array ``X @ V`` or the tree-reduced ``X.T @ V``."""
        if V.ndim != 2:
            raise ValueError(f"products with the data need a 2-D thin matrix, got shape {tuple(V.shape)}.")
        dtype = np.result_type(self.X.dtype, V.dtype)
        if not self.transposed:
            return _dask.map_rows(_times, self.X, ncols=V.shape[1], dtype=dtype, V=np.asarray(V),
                                  factor=self.factor)
        V = self._rows(V)
        out = _dask.sum_rows(_t_times, self.X, V, shape=(self.X.shape[1], V.shape[1]), dtype=dtype)
        return out * self.factor if self.factor != 1.0 else out

    def gradient_sums(self, G, X_aux, with_X):
        """``(X^T G or None, X_aux^T G or None, column sums of G)``, lazy, from one task per row
        chunk and one tree reduction (``X`` being this matrix's rows, ``A = X``)."""
        p, d = self.X.shape[1] if with_X else 0, G.shape[1]
        q = 0 if X_aux is None else X_aux.shape[1]
        arrays = (self.X, G) + (() if X_aux is None else (X_aux,))
        packed = _dask.sum_rows(_gradient_sums, *arrays, shape=(p + q + 1, d), dtype=np.result_type(self.dtype, G.dtype),
                                with_X=with_X)
        XtG = None
        if with_X:
            XtG = packed[:p] * self.factor if self.factor != 1.0 else packed[:p]
        return XtG, (packed[p:p + q] if q else None), packed[p + q]

    def gram(self):
        """``A @ A.T`` for ``A = X.T``: the features' Gram matrix ``X.T @ X`` (p x p), summed over
        the row chunks.

        Raises
        ------
        ValueError
            For ``A = X``: the samples' Gram matrix (n x n) is not computed on a cluster.
        """
        if not self.transposed:
            raise ValueError(
                "projection='gram' on a dask array needs at least as many samples as features (it uses the "
                "features' Gram matrix; the samples' one would gather n_samples^2 numbers): use "
                "projection='subspace'."
            )
        p = self.X.shape[1]
        G = host(_dask.sum_rows(_gram, self.X, shape=(p, p), dtype=self.X.dtype))
        return G * (self.factor * self.factor) if self.factor != 1.0 else G

    def squared_norm(self):
        """``||A||_F^2`` as a Python float."""
        if self._sq_norm is None:
            total = float(host(_dask.sum_rows(_squared_norm, self.X, shape=(), dtype=np.float64)))
            self._sq_norm = total * self.factor * self.factor
        return self._sq_norm

    def own_scale(self):
        """The scale :func:`~sdlearn._data.data_scale` gives the matrix represented
        (``X / scale``): a stream checks with it that a batch keeps the units of the first one."""
        if self._own_scale is None:  # the scale of the user's X (self.X may be a rescaled copy)
            self._own_scale = scale_of(self.X)[0] * (self.scale if self.factor == 1.0 else 1.0)
        return self._own_scale / self.scale

    # -- arrays laid out like the first axis of A ---------------------------------------------
    def _layout(self, k, value, dtype):
        dtype = self.dtype if dtype is None else dtype
        if self.transposed:
            return np.full((self.X.shape[1], k), value, dtype=dtype)
        return _dask.constant_rows(self.row_chunks, k, value, dtype)

    def zeros(self, k, dtype=None):
        """Zeros of shape ``(m, k)``: a row array for ``A = X``, a host array for ``A = X.T``."""
        return self._layout(k, 0.0, dtype)

    def ones(self, k, dtype=None):
        """Ones of shape ``(m, k)`` (laid out as :meth:`zeros`)."""
        return self._layout(k, 1.0, dtype)

    def standard_normal(self, rng, k, dtype=None, scale=1.0):
        """``scale * rng.standard_normal((m, k))``, the same numbers as in memory (a row array for
        ``A = X``, drawn and shipped one chunk at a time)."""
        dtype = self.dtype if dtype is None else dtype
        if self.transposed:
            return np.asarray(scale * rng.standard_normal((self.X.shape[1], k)), dtype=dtype)
        return _dask.standard_normal_rows(rng, self.row_chunks, k, dtype, scale)

    def check_non_negative(self, whom):
        """Raise a ``ValueError`` naming ``whom`` if ``X`` has a negative entry."""
        if self._negatives is None:
            self._negatives = float(host(statistics(self.X)[3]))
        if self._negatives > 0:
            raise ValueError(f"Negative values in data passed to {whom}.")

    def _rows(self, V):
        """``V`` as a row array chunked like ``X`` (host arrays are shipped)."""
        return _dask.align_rows(V, self.row_chunks, "a thin matrix")


def scale_of(X):
    """:func:`~sdlearn._data.data_scale` of a row-chunked dask array: one round trip for the sum
    of squares and the largest entry, a second one only for data near the float range's
    limits. Returns ``(scale, ||X / scale||^2)``."""
    total, largest, _, _ = (float(v) for v in host_statistics(X))
    return scale_from_statistics(X, total, largest)


def host_statistics(X):
    """:func:`statistics` computed (one round trip)."""
    return hosts(*statistics(X))


def scale_from_statistics(X, total, largest):
    """``(scale, ||X / scale||^2)`` from the sum of squares and the largest entry, as
    :func:`~sdlearn._data.data_scale` decides in memory."""
    n_entries = X.shape[0] * X.shape[1]
    if n_entries == 0:
        return 1.0, 0.0
    max_exponent = max_exponent_of(X, np)
    if plain_sum_is_accurate(total, n_entries, max_exponent):
        return from_sum(total, n_entries, 0)

    def scaled(k):
        return float(host(_dask.sum_rows(_scaled_squares, X, shape=(), dtype=np.float64, k=k)))

    return scale_from_largest(largest, n_entries, max_exponent, lambda: total, scaled)

