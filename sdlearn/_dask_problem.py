"""Problem set-up for data on a dask cluster: :func:`sdlearn._problem.prepare_problem`'s checks,
label encoding and rescaling as reductions over the row chunks.

``X`` is persisted once on the workers; ``y``, ``sample_weight`` and ``X_aux`` (dask or in-memory
arrays) are chunked like its rows. The checks (finite entries, labels, weights) and the scales
(the power of two of ``X``'s root mean square, one per covariate, the mean weight) are per-chunk
statistics summed in dask's tree reductions: three round trips in all (the labels, the
statistics, the covariates' scaled squares), a fourth only for data near the limits of the
float range. The problem's row arrays (one-hot labels, weights, scaled covariates) are built on
the workers and persisted next to the rows of ``X``; the caller receives only classes, counts
and scales.
"""

import numpy as np
import scipy.sparse as sp
from dask import array as da

from . import _dask
from ._backend import array_api_compat
from ._dask_data import DaskDataMatrix, scale_from_statistics, statistics
from ._data import (
    column_exponents,
    column_scales_from,
    max_abs,
    power_of_two_scale,
    scaled_column_squares,
    scale_columns,
)
from ._problem import Scales, check_class_totals, check_n_components, rescaled_problem
from ._rows import hosts


def prepare_dask_problem(X, y, *, X_aux, sample_weight, mode, n_components, xi, alpha, classes=None, scales=None):
    """The rescaled :class:`~sdlearn._problem.Problem` of a row-chunked dask ``X`` (see the module
    docstring); the arguments and errors of :func:`~sdlearn._problem.prepare_problem`."""
    xp = array_api_compat.numpy
    X = floating_rows(X, "X").persist()
    n, p = X.shape
    check_n_components(n_components, n, p)
    chunks = X.chunks[0]
    y = _dask.align_rows(y, chunks, "y")
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D with {n} entries (one per row of X), got shape {y.shape}.")
    w = None
    if sample_weight is not None:
        w = _dask.align_rows(sample_weight, chunks, "sample_weight")
        if w.ndim != 1:
            raise ValueError(f"sample_weight must be {n} finite non-negative numbers.")
        w = w.astype(np.float64)
    if X_aux is not None:
        X_aux = dense_rows(_dask.align_rows(X_aux, chunks, "X_aux"), "X_aux").astype(X.dtype)
        if X_aux.shape[1] == 0:
            X_aux = None

    # round trip 1: the classes, and every statistic that does not need them
    lazy = {"X": statistics(X)}
    if classes is None:
        lazy["classes"] = da.unique(y)
    if y.dtype.kind in "fc":
        lazy["bad_y"] = _count_nonfinite(y)
    if w is not None:
        lazy["w"] = (_count_bad_weights(w), w.max(), w.min())
    if X_aux is not None:
        lazy["aux"] = (_dask.reduce_rows(_column_max_abs, X_aux, shape=(X_aux.shape[1],), how="max"),
                       _count_nonfinite(X_aux))
    stats = dict(zip(lazy, hosts(*lazy.values())))
    total, largest, bad_X, negatives = (float(v) for v in stats["X"])
    if bad_X:
        raise ValueError("X contains NaN or infinity; impute or drop those entries first.")
    if stats.get("bad_y"):
        raise ValueError("y contains NaN or infinity; every sample needs a class label.")
    classes_given = classes is not None
    classes = np.asarray(classes) if classes_given else np.asarray(stats["classes"])
    if len(classes) < 2:
        raise ValueError(f"y must contain at least two classes, got only {classes.tolist()}.")
    w_top = w_bottom = 1.0
    if w is not None:
        bad_w, w_top, w_bottom = (float(v) for v in stats["w"])
        if bad_w:
            raise ValueError(f"sample_weight must be {n} finite non-negative numbers.")
        if not w_top > 0:
            raise ValueError("sample_weight is zero for every sample: at least one sample must have a positive weight.")
    if X_aux is not None and stats["aux"][1]:
        raise ValueError("X_aux contains NaN or infinity; impute or drop those entries first.")

    # round trip 2: the labels' counts (unknown labels, class totals) and the covariates' squares
    K = len(classes)
    lazy = {"labels": _dask.sum_rows(_label_statistics, y, *(() if w is None else (w,)), shape=(K + 2,),
                                      classes=classes, w_top=w_top)}
    if X_aux is not None and scales is None:
        exponents = column_exponents(stats["aux"][0])
        lazy["aux"] = _dask.sum_rows(_scaled_column_squares, X_aux, shape=(X_aux.shape[1],), exponents=exponents)
    second = dict(zip(lazy, hosts(*lazy.values())))
    unknown, totals, w_sum = second["labels"][0], second["labels"][1:K + 1], second["labels"][K + 1]
    if unknown:
        seen = np.asarray(hosts(da.unique(y))[0])
        raise ValueError(f"y holds labels not in classes: {np.setdiff1d(seen, classes).tolist()}.")
    if not classes_given:
        check_class_totals(totals, classes)

    own_scale, own_sq_norm = scale_from_statistics(X, total, largest)
    sq_norm = own_sq_norm
    if scales is None:
        tau = None
        if X_aux is not None:
            largest_aux = stats["aux"][0]
            tau = column_scales_from(largest_aux, n, lambda _: second["aux"])
        mean_w = 1.0 if w is None else w_top * (w_sum / n)
        scales = Scales(data=own_scale, aux=tau, loss=power_of_two_scale(mean_w))
    else:
        sq_norm = None
    data = DaskDataMatrix(X, xp, scales.data, sq_norm, negatives=negatives, own_scale=own_scale)
    if sq_norm is None and data.X is X:  # the data was not copied: its norm follows exactly
        data._sq_norm = total * data.factor * data.factor

    # the problem's row arrays, built and persisted next to the rows of X
    Y = _dask.map_rows(_one_hot, y, ncols=K - 1, dtype=X.dtype, classes=classes)
    if w is None:
        w = _dask.constant_rows(chunks, None, 1.0 / scales.loss, X.dtype)
    else:
        w = _dask.map_rows(_scaled_weights, w, dtype=X.dtype, loss=scales.loss)
    if X_aux is not None:
        X_aux = _dask.map_rows(_scale_columns, X_aux, ncols=X_aux.shape[1], dtype=X.dtype, scales=scales.aux)
    Y, w, X_aux = _dask.persist_all(Y, w, X_aux)
    # the range of the weights as the solvers see them (divided by the loss scale, in X's dtype)
    w_max, w_min = (float(np.asarray(v / scales.loss, dtype=X.dtype)) for v in (w_top, w_bottom))
    return rescaled_problem(data, Y, w, X_aux, classes, xp, mode, int(n_components), xi, alpha, scales,
                            w_max=w_max, w_min=w_min)


def floating_rows(X, name):
    """A 2-D dask array chunked by rows, of a real floating dtype (integers and booleans become
    float64; anything else is an error)."""
    X = _dask.rows_of_X(X, name)
    if X.dtype not in (np.float32, np.float64):
        if X.dtype.kind not in "biuf":
            raise ValueError(f"{name} must hold real numbers, got dtype {X.dtype}.")
        X = X.astype(np.float64)
    return X


def dense_rows(A, name):
    """A 2-D row array with dense chunks (the covariates are few columns)."""
    if A.ndim != 2:
        raise ValueError(f"{name} must be 2-D with one row per sample, got shape {A.shape}.")
    if sp.issparse(getattr(A, "_meta", None)):
        A = A.map_blocks(_to_dense, dtype=A.dtype, meta=np.empty((0, 0), dtype=A.dtype))
    if A.dtype not in (np.float32, np.float64):
        if A.dtype.kind not in "biuf":
            raise ValueError(f"{name} must hold real numbers, got dtype {A.dtype}.")
        A = A.astype(np.float64)
    return A


# -- chunk kernels (module level: the workers import them by name) ------------------------------
def _to_dense(a):
    return a.toarray()


def _count_nonfinite(a):
    return _dask.sum_rows(_nonfinite, a, shape=(), dtype=np.float64)


def _nonfinite(a):
    return float(a.size - np.count_nonzero(np.isfinite(a)))


def _count_bad_weights(w):
    return _dask.sum_rows(_bad_weights, w, shape=(), dtype=np.float64)


def _bad_weights(w):
    return float(np.count_nonzero(~(np.isfinite(w) & (w >= 0))))


def _column_max_abs(a):
    return np.asarray([max_abs(a[:, j:j + 1], np) for j in range(a.shape[1])])


def _scaled_column_squares(a, exponents):
    return scaled_column_squares(a, exponents, np)


def _label_index(y, classes):
    index = np.searchsorted(classes, y)
    unknown = (index >= len(classes)) | (classes[np.minimum(index, len(classes) - 1)] != y)
    return index, unknown


def _label_statistics(y, w=None, *, classes, w_top):
    """``[unknown labels, weight of each class, sum of w / w_top]`` of a chunk."""
    index, unknown = _label_index(y, classes)
    known = ~unknown
    weights = np.ones(len(y)) if w is None else w
    totals = np.bincount(index[known], weights=weights[known], minlength=len(classes))
    return np.concatenate([[float(np.count_nonzero(unknown))], totals, [float(np.sum(weights / w_top))]])


def _one_hot(y, classes):
    index, _ = _label_index(y, classes)
    one_hot = np.zeros((len(y), len(classes) - 1))
    rows = np.flatnonzero(index > 0)
    one_hot[rows, index[rows] - 1] = 1.0
    return one_hot


def _scaled_weights(w, loss):
    return w / loss


def _scale_columns(a, scales):
    return scale_columns(a, scales, array_api_compat.numpy)


def column_scales_of_rows(A):
    """:func:`~sdlearn._data.column_scales` of a row-chunked dask ``A`` (two round trips)."""
    largest = hosts(_dask.reduce_rows(_column_max_abs, A, shape=(A.shape[1],), how="max"))[0]
    exponents = column_exponents(largest)
    return column_scales_from(largest, A.shape[0], lambda _: hosts(
        _dask.sum_rows(_scaled_column_squares, A, shape=(A.shape[1],), exponents=exponents))[0])
