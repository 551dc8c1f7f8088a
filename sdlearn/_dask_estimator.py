""":class:`~sdlearn.SDLClassifier` on dask arrays: input checks, class weights, and predictions
by row blocks.

``fit`` and ``partial_fit`` accept a dask ``X`` chunked by rows (dense or SciPy sparse chunks);
``y``, ``X_aux`` and the weights may be dask or in-memory arrays and are chunked like ``X``.
Nothing here gathers rows: labels are summarised by their classes and counts, weights are built
on the workers, and predictions are lazy dask arrays computed block by block with the
in-memory code (one task per row chunk), so a fitted model scores a data set larger than the
client's memory.
"""

import numpy as np
from dask import array as da
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets

from . import _dask
from ._dask_problem import dense_rows, floating_rows
from ._rows import floats, host


def check_X(estimator, X, *, reset):
    """A dask ``X`` checked like ``validate_data`` checks arrays: 2-D, real numbers, chunked by
    rows (column chunks are merged), the number of features of the fit (sets
    ``n_features_in_`` when ``reset``). Dask arrays carry no column names."""
    X = floating_rows(X, "X")
    n_features = X.shape[1]
    if reset:
        estimator.n_features_in_ = n_features
        estimator.__dict__.pop("feature_names_in_", None)
    elif n_features != estimator.n_features_in_:
        raise ValueError(
            f"X has {n_features} features, but {type(estimator).__name__} is expecting "
            f"{estimator.n_features_in_} features as input."
        )
    if X.shape[0] < 1:
        raise ValueError("Found array with 0 sample(s) (shape=(0, ...)) while a minimum of 1 is required.")
    return X


def labels(y, chunks):
    """``y`` as a 1-D row array chunked like ``chunks``, its classes and their counts (one
    round trip), checked as classification targets."""
    y = _dask.align_rows(y, chunks, "y")
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D with one label per row of X, got shape {y.shape}.")
    classes, counts = host(da.unique(y, return_counts=True))
    check_classification_targets(classes)
    return y, np.asarray(classes), np.asarray(counts)


def sample_weight(class_weight, y, classes, counts):
    """The weights of ``class_weight`` (a dict or 'balanced') for the row array ``y``, built on
    the workers (``compute_sample_weight`` of scikit-learn, from the classes' counts)."""
    if class_weight == "balanced":
        weights = counts.sum() / (len(classes) * counts.astype(np.float64))
    else:
        weights = compute_class_weight(class_weight, classes=classes, y=classes)
    return _dask.map_rows(_class_weights, y, dtype=np.float64, classes=classes, weights=weights)


def _class_weights(y, classes, weights):
    return weights[np.searchsorted(classes, y)]


def columns(X, indices):
    """Columns ``indices`` of a dask ``X`` (lazy)."""
    return X[:, list(indices)]


def covariates(estimator, X, X_aux):
    """The auxiliary covariates of a dask ``X``: the columns ``aux_features`` selects (dense),
    then ``X_aux`` (dask or in-memory) chunked like ``X``'s rows; ``None`` when there are none."""
    parts = []
    if estimator._aux_columns:
        parts.append(dense_rows(columns(X, estimator._aux_columns), "X"))
    if X_aux is not None:
        aux = dense_rows(_dask.align_rows(X_aux, X.chunks[0], "X_aux"), "X_aux")
        parts.append(aux.astype(X.dtype) if aux.dtype != X.dtype else aux)
    if not parts:
        return None
    return da.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]


# -- predictions by row blocks ------------------------------------------------------------------
def _prediction_model(estimator):
    """A shallow copy of the fitted estimator for the prediction tasks: the fitted attributes
    only (no solver state or stream, which may hold dask arrays; no column names, which dask
    arrays do not carry)."""
    model = type(estimator).__new__(type(estimator))
    model.__dict__.update(estimator.__dict__)
    for name in ("_result", "_stream", "feature_names_in_"):
        model.__dict__.pop(name, None)
    return model


def _apply(X, X_aux=None, largest=None, *, model, method):
    """``model.method`` on one row block (the in-memory code path)."""
    if largest is not None:
        model = _with_largest(model, largest)
    if method == "transform":
        return model.transform(X)
    return getattr(model, method)(X, X_aux=X_aux)


def _with_largest(model, largest):
    copy = type(model).__new__(type(model))
    copy.__dict__.update(model.__dict__)
    copy._codes_largest = float(largest)
    return copy


def by_row_blocks(estimator, method, X, X_aux, *, ncols, dtype):
    """``estimator.method(X, X_aux)`` as a lazy dask array, one task per row chunk of ``X``.

    Nonnegative codes stop relative to the largest entry of ``X W`` over the whole data set: it
    is a lazy reduction that every block's task receives, so the blocks' codes equal those of the
    whole array's rows.
    """
    X = check_X(estimator, X, reset=False)
    arrays = [X]
    if X_aux is not None:
        arrays.append(dense_rows(_dask.align_rows(X_aux, X.chunks[0], "X_aux"), "X_aux"))
    model = _prediction_model(estimator)
    constants = {}
    if getattr(estimator, "nonnegative", False) and (method == "transform" or estimator.mode == "feature"):
        constants["largest"] = _largest_product(model, X)
    return _dask.map_rows(_Apply(len(arrays)), *arrays, ncols=ncols, dtype=dtype, model=model, method=method,
                          **constants)


class _Apply:
    """:func:`_apply` on the blocks of the row arrays (``X`` and, when given, ``X_aux``)."""

    def __init__(self, n_arrays):
        self.n_arrays = n_arrays
        self.__name__ = "sdl_predict"

    def __call__(self, X, *rest, model, method, largest=None):
        X_aux = rest[0] if self.n_arrays > 1 else None
        return _apply(X, X_aux, largest, model=model, method=method)


def _largest_product(model, X):
    """Lazy largest absolute entry of ``X_main W`` over all the rows (the scale of the
    nonnegative coding's stopping rule; ``model`` as :func:`_prediction_model` gives it)."""
    return _dask.reduce_rows(_block_largest_product, X, shape=(), how="max", model=model)


def _block_largest_product(X, model):
    from ._coding import scaled_product
    from ._data import max_abs

    X_main = model._main(X, np)
    W = np.asarray(model.components_, dtype=X.dtype).T
    return max_abs(scaled_product(X_main, W, np, model._scale()), np)


def accuracy(predicted, y, sample_weight):
    """Mean accuracy of lazy predictions against ``y`` (dask or in-memory), computed on the
    cluster (one round trip): ``accuracy_score`` of scikit-learn."""
    chunks = predicted.chunks[0]
    y = _dask.align_rows(y, chunks, "y")
    hits = (predicted == y).astype(np.float64)
    if sample_weight is None:
        total, = floats(hits.sum())
        return total / predicted.shape[0]
    w = _dask.align_rows(sample_weight, chunks, "sample_weight").astype(np.float64)
    weighted, weight = floats((hits * w).sum(), w.sum())
    return weighted / weight
