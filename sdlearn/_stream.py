"""Streaming (mini-batch) SDL in feature mode: the state behind ``SDLClassifier.partial_fit``.

Each batch is seen once. Its codes are computed on the current dictionary (least squares, then
BCD's code step, :func:`sdlearn._bcd.update_codes`), and two surrogates of the objective over
every sample seen so far are updated:

* reconstruction, as in Mairal et al.'s online dictionary learning: the statistics
  ``A = sum C^T C`` and ``B = sum X^T C`` give ``sum ||x - W c||^2 = tr(W^T W A) - 2 tr(W^T B)
  + const``, minimised by a pass of block coordinate descent over the atoms (each kept in the
  unit ball, and nonnegative on request);
* classifier, as in online Newton methods: each batch's logistic loss is replaced by its
  second-order expansion at the coefficients current when the batch arrived; the accumulated
  quadratic (Hessian sum ``H``, linear term ``h``) plus the ridge is minimised exactly.

Only feature mode streams: its codes belong to single samples, so a batch is self-contained.
In filter mode the dictionary step reads the whole ``X`` through the classifier, which a
stream cannot revisit. The statistics live in the units of the rescaled problem of the first
batch (:mod:`sdlearn._problem`; every later batch is rescaled the same way), on the host
(the streaming path targets data larger than memory).
"""

import math

import numpy as np
from sklearn.utils import check_random_state

from ._bcd import BlockState, update_codes
from ._coding import encode
from ._data import column_scales
from ._logistic import block_statistics
from ._problem import initial_intercept, prepare_problem
from ._projection import make_projector
from ._rows import host, hosts, is_dask


_MAX_LOG2_DRIFT = 64  # largest change of units between batches, in powers of two


class StreamState:
    """Sufficient statistics and current factors of a streamed SDL fit (internal).

    Attributes
    ----------
    n_batches : int
        Batches seen.
    n_seen : int
        Samples seen.
    """

    def __init__(self, classes, n_features, n_aux, n_components, *, xi, alpha, nonnegative,
                 block_max_iter, random_state):
        self.classes = np.asarray(classes)
        self.r, self.q, self.d = n_components, n_aux, len(classes) - 1
        self.xi, self.alpha, self.nonnegative = xi, alpha, nonnegative
        self.blocks = BlockState(nonnegative=nonnegative, n_steps=block_max_iter)
        self.rng = check_random_state(random_state)
        D = self.r + self.q + 1
        self.W = None
        self.V = np.zeros((D, self.d))
        self.A = np.zeros((self.r, self.r))
        self.B = np.zeros((n_features, self.r))
        self.H = np.zeros((D * self.d, D * self.d))
        self.h = np.zeros(D * self.d)
        self.scales = None
        self.problem = None
        self.n_seen = 0
        self.n_batches = 0

    # -- one batch ----------------------------------------------------------------------------
    def update(self, X, y, X_aux, sample_weight):
        """Fold one batch into the statistics and refit the dictionary and the classifier.

        Returns
        -------
        parts : dict
            The objective of the batch and its parts (user's units) at the updated model, with
            the codes that :meth:`SDLClassifier.transform` gives.
        """
        if self.scales is not None and not (np.any(self.A) or np.any(self.B)):
            self.scales = None  # only zeros seen so far: this batch sets the units
            self.blocks.curvature = {}
        pb = prepare_problem(
            X, y, X_aux=X_aux, sample_weight=sample_weight, mode="feature",
            n_components=min(self.r, X.shape[0], X.shape[1]), xi=self.xi, alpha=self.alpha,
            classes=self.classes, scales=self.scales,
        )
        if self.scales is not None:
            self._check_units(pb)
        if self.nonnegative and pb.distributed:  # an in-memory batch was checked by the estimator
            pb.X.check_non_negative("SDLClassifier with nonnegative=True (X)")
        pb.n_components = self.r
        self.problem, self.scales = pb, pb.scales
        if self.W is None:
            self._initialise(pb)
        beta, gamma, b = self._split(self.V)
        codes = encode(pb.X, self.W, pb.xp, nonnegative=self.nonnegative)
        codes, _ = update_codes(pb, self.blocks, self.W, codes, beta, gamma, b)

        self.n_seen += pb.n_samples
        self.n_batches += 1
        CtC, XtC = hosts(codes.T @ codes, pb.X.T.lazy_matmul(codes))  # summed on the cluster for dask rows
        self.A += CtC
        self.B += np.asarray(XtC)
        self._update_dictionary()
        self._update_classifier(pb, codes)
        beta, gamma, b = self._split(self.V)
        fitted = encode(pb.X, self.W, pb.xp, nonnegative=self.nonnegative)
        return pb.in_user_units(pb.objective(self.W, fitted, beta, gamma, b))

    def _check_units(self, pb):
        """Refuse a batch whose features or covariates are on another scale than the stream's
        first batch by more than ``2^64`` (about 1e19): the statistics live in its units."""
        xp = pb.xp
        ratios = [("X", pb.X.own_scale())]  # the batch's scale relative to the stream's
        if pb.X_aux is not None:
            ratios += [(f"X_aux column {j}", t) for j, t in enumerate(column_scales(pb.X_aux, xp))]
        for name, ratio in ratios:
            if ratio > 0 and abs(math.log2(ratio)) > _MAX_LOG2_DRIFT:
                raise ValueError(
                    f"the {name} entries of this batch are about {ratio:.0e} times those of the stream's first "
                    "batch; partial_fit keeps the units of its first batch: standardise the features "
                    "(e.g. with StandardScaler) before streaming."
                )

    def factors(self):
        """Dictionary (atoms as columns), ``beta``, ``gamma`` (or ``None``) and the intercept,
        in the user's units (copies)."""
        beta, gamma, b = self._split(self.V)
        W, _, beta, gamma, b = self.problem.to_user(self.W.copy(), None, beta, gamma, b)
        return W, beta, gamma, b

    def _initialise(self, pb):
        """Atoms from the truncated SVD of the first batch (absolute values if nonnegative)."""
        r = min(self.r, pb.n_samples, pb.n_features)
        basis = make_projector(pb.X.T, r, "auto", pb.xp, self.rng).project(pb.zeros(pb.n_features, 0), 0.0)
        W = np.asarray(basis.U)
        if r < self.r:  # a first batch smaller than r: fill the rest at random
            W = np.hstack([W, self.rng.standard_normal((pb.n_features, self.r - r))])
        W = np.abs(W) if self.nonnegative else W
        norms = np.linalg.norm(W, axis=0)
        self.W = W / np.where(norms > 0, norms, 1.0)
        self.V[-1, :] = np.asarray(initial_intercept(pb))

    def _split(self, V):
        r, q = self.r, self.q
        return V[:r], (V[r:r + q] if q else None), V[-1]

    def _update_dictionary(self):
        """One pass of block coordinate descent over the atoms on the reconstruction surrogate."""
        W, A, B = self.W, self.A, self.B
        for k in range(self.r):
            if not A[k, k] > 1e-12 * max(np.trace(A), 1e-300):
                continue
            atom = W[:, k] + (B[:, k] - W @ A[:, k]) / A[k, k]
            if self.nonnegative:
                atom = np.maximum(atom, 0.0)
            W[:, k] = atom / max(np.linalg.norm(atom), 1.0)

    def _update_classifier(self, pb, codes):
        """Add the batch's second-order expansion and minimise the accumulated quadratic."""
        d, D = self.d, self.r + self.q + 1
        R = np.eye(d) if pb.score_map is None else np.asarray(pb.score_map)
        arrays = (codes, pb.Y, pb.w) + ((pb.X_aux,) if self.q else ())
        if pb.distributed:  # each row chunk's expansion on its worker, summed in a tree
            from ._dask import sum_rows

            packed = host(sum_rows(_second_order, *arrays, shape=(D * d + (D * d) ** 2,), V=self.V, R=R))
        else:
            packed = _second_order(*(np.asarray(a) for a in arrays), V=self.V, R=R)
        gradient, H_batch = packed[:D * d], packed[D * d:].reshape(D * d, D * d)
        self.H += H_batch
        self.h += H_batch @ self.V.ravel() - gradient
        # the ridge main/2 tr(beta^T (C^T C / n) beta) + aux/2 ||gamma||^2, with C^T C / n ~ A / n_seen
        penalty = np.zeros((D, D))
        penalty[:self.r, :self.r] = (pb.ridge.main * pb.n_samples) * self.A / self.n_seen
        if self.q:
            penalty[self.r:self.r + self.q, self.r:self.r + self.q] = np.diag(np.asarray(pb.ridge.aux))
        system = self.H + np.kron(penalty, np.eye(d))
        system += 1e-10 * max(np.trace(system) / len(system), 1e-300) * np.eye(len(system))
        self.V = np.linalg.solve(system, self.h).reshape(D, d)


def _second_order(codes, Y, w, X_aux=None, *, V, R):
    """``[gradient, Hessian]`` (flattened) of a batch's (or row chunk's) weighted logistic loss
    ``sum_i w_i l(y_i, z_i^T V R)`` in ``vec(V)`` (row-major), ``z_i = [codes_i, X_aux_i, 1]``."""
    n, (D, d) = codes.shape[0], V.shape
    Z = np.hstack([codes] + ([X_aux] if X_aux is not None else []) + [np.ones((n, 1))])
    packed = block_statistics(Z, Y, w, VR=V @ R, R=R)  # [loss, Z^T G in the contrast scores, Hessian]
    gradient = packed[1:1 + D * d].reshape(D, d) @ R
    return np.concatenate([gradient.ravel(), packed[1 + D * d:]])


def iter_batches(X, y, X_aux=None, *, batch_size=1000):
    """Yield ``(X, y, X_aux)`` row batches.

    A dask ``X`` is cut along its row chunks: each batch is a run of consecutive whole chunks of
    at most ``batch_size`` rows (at least one chunk), and stays a dask array, so that
    :meth:`SDLClassifier.partial_fit` computes its statistics on the workers (``y`` and
    ``X_aux`` are cut alike). Other inputs are sliced into NumPy (or SciPy sparse) batches of
    ``batch_size`` rows.
    """
    if is_dask(X):
        from ._dask import _known_rows, rows_of_X

        # known row chunk sizes (computed once if unknown): the batches are sliced by row index
        X = rows_of_X(X)
        y, X_aux = (_known_rows(a, "y/X_aux") if is_dask(a) else a for a in (y, X_aux))
        for start, stop in _chunk_runs(X.chunks[0], batch_size):
            yield tuple(None if a is None else a[start:stop] for a in (X, y, X_aux))
        return
    n = X.shape[0]
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        yield tuple(_compute(a, start, stop) for a in (X, y, X_aux))


def _chunk_runs(sizes, batch_size):
    """``(start, stop)`` of runs of whole row chunks (of known ``sizes``) with at most
    ``batch_size`` rows each (a larger chunk is a run by itself)."""
    runs, start, stop = [], 0, 0
    for size in sizes:
        if stop > start and stop - start + size > batch_size:
            runs.append((start, stop))
            start = stop
        stop += size
    if stop > start:
        runs.append((start, stop))
    return runs


def _compute(a, start, stop):
    if a is None:
        return None
    part = a[start:stop]
    return part.compute() if is_dask(part) else part


def fit_stream(estimator, X, y, *, X_aux=None, classes=None, batch_size=1000, n_epochs=1):
    """Fit an estimator with ``partial_fit`` over the row batches of ``X``.

    The path for data larger than memory: ``X`` (and ``y``, ``X_aux``) may be Dask arrays,
    cut into batches of whole row chunks that stay on the active scheduler (a
    ``dask.distributed`` cluster if one is active): :meth:`SDLClassifier.partial_fit` computes
    each batch's codes and statistics where its rows are and only the sums reach the caller.
    NumPy arrays and SciPy sparse matrices are cut into batches of ``batch_size`` rows.

    Parameters
    ----------
    estimator : SDLClassifier
        An estimator with ``partial_fit`` (``mode='feature'``, ``solver='bcd'``).
    X : array-like, sparse matrix or dask array of shape (n_samples, n_features)
        Data.
    y : array-like or dask array of shape (n_samples,)
        Labels.
    X_aux : array-like or dask array of shape (n_samples, n_aux), default=None
        Auxiliary covariates.
    classes : array-like, default=None
        All classes; needed unless the first batch holds every class.
    batch_size : int, default=1000
        Rows per batch for non-Dask input (Dask input uses its row chunks).
    n_epochs : int, default=1
        Passes over the data.

    Returns
    -------
    estimator : SDLClassifier
        The fitted estimator.

    Examples
    --------
    >>> from sdlearn import SDLClassifier, fit_stream
    >>> from sdlearn.datasets import make_sdl_classification
    >>> d = make_sdl_classification(600, 20, 3, mode="feature", random_state=0)
    >>> clf = fit_stream(SDLClassifier(3, mode="feature", solver="bcd"), d.data, d.target, batch_size=200)
    >>> clf.n_iter_
    3
    """
    if classes is None:  # a dask y is summarised on the cluster (only the classes travel)
        classes = np.asarray(host(_unique(y))) if is_dask(y) else np.unique(np.asarray(y))
    for _ in range(n_epochs):
        for X_batch, y_batch, aux_batch in iter_batches(X, y, X_aux, batch_size=batch_size):
            estimator.partial_fit(X_batch, y_batch, classes=classes, X_aux=aux_batch)
    return estimator


def _unique(y):
    from dask import array as da

    return da.unique(y)
