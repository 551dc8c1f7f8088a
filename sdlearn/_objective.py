"""The SDL objective in one place: scores, penalty, the classifier part's value and gradient,
and the full objective. LPGD, BCD, the streaming fit and the estimator all call these.

Conventions (rows are samples, as at the public API):

* ``X`` (n, p) features, ``X_aux`` (n, q) auxiliary covariates or ``None``;
* ``Y`` (n, K - 1) one-hot labels with class 0 as the baseline (its row is all zeros);
* ``w`` (n,) per-sample weights of the logistic loss (class weights);
* ``W`` (p, r) dictionary, ``C`` (n, r) codes (the paper's ``H`` transposed),
  ``beta`` (r, K - 1), ``gamma`` (q, K - 1), ``b`` (K - 1,) intercept;
* ``T`` the classifier block of the lifted matrix: ``W beta`` (p, K - 1) in filter mode,
  ``C beta`` (n, K - 1) in feature mode.

Class scores (the logits of classes 1..K-1 against the baseline):

* filter mode: ``S = X T + X_aux gamma + b = X W beta + X_aux gamma + b``;
* feature mode: ``S = T + X_aux gamma + b = C beta + X_aux gamma + b``.

The objective is::

    F = sum_i w_i l(y_i, s_i) + xi ||X - C W^T||_F^2 + penalty

with ``l(y, s) = log(1 + sum_j exp(s_j)) - s_y`` (``s_0 = 0``) and the ridge penalty::

    penalty = alpha / 2 (lam tr(T M T^T) + tr(gamma M gamma^T)),

``lam = 1`` in filter mode (a ridge on the effective linear classifier ``W beta`` of the
features, as in ``LogisticRegression(C=1/alpha)``) and ``lam = 1/n`` in feature mode (a ridge
on the mean squared score). ``M`` acts on the K - 1 contrasts against the baseline: ``M = 1``
for two classes (the ridge of the binary ``LogisticRegression``), and ``M = I - 1 1^T / K`` for
K >= 3 classes, the ridge of the symmetric multinomial parameterization (one coefficient vector
per class, all penalised, as in scikit-learn's multinomial ``LogisticRegression``) written on
the contrasts: it does not depend on which class is the baseline nor on the order of the
labels. The penalty is a function of the lifted matrix, so LPGD and BCD minimise the same
objective.

The solvers work on a rescaled problem (see :mod:`sdlearn._problem`) and call the same
functions on it: with a :class:`Ridge` of other weights, and a ``score_map`` ``R`` when their
classifier variables live in coordinates where the penalty is Euclidean (scores ``S R``).
"""

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

from ._backend import device_of, squared_norm
from ._rows import hosts, is_dask, keep, row_map, row_sums, scalar_sum


def logistic_curvature(n_classes):
    """Upper bound of the Hessian of the multinomial logistic loss with respect to the scores.

    ``1/4`` for two classes (the sigmoid). For K >= 3 classes Boehning's bound on the contrast
    scores is ``(I - 1 1^T / K) / 2``: ``1/2`` in the metric of the penalty (the coordinates
    where the solvers work), and at most ``1/2`` in any case.
    """
    return 0.25 if n_classes <= 2 else 0.5


def contrast_metric(n_classes):
    """``M`` of the penalty on the K - 1 contrasts (host array): ``[[1]]`` for two classes,
    ``I - 1 1^T / K`` for K >= 3."""
    d = n_classes - 1
    if d == 1:
        return np.ones((1, 1))
    return np.eye(d) - 1.0 / n_classes


def contrast_roots(n_classes):
    """``(M^(1/2), M^(-1/2))`` (host arrays), or ``(None, None)`` for two classes.

    ``M = I - 1 1^T / K = (I - u u^T) + u u^T / K`` with ``u = 1 / sqrt(K - 1)``, so its powers
    are ``I + (K^(-t) - 1) u u^T``.
    """
    d = n_classes - 1
    if d == 1:
        return None, None
    ones = np.full((d, d), 1.0 / d)
    root = np.eye(d) + (1.0 / math.sqrt(n_classes) - 1.0) * ones
    inverse_root = np.eye(d) + (math.sqrt(n_classes) - 1.0) * ones
    return root, inverse_root


@dataclass(frozen=True)
class Ridge:
    """The ridge penalty ``1/2 (main tr(T M T^T) + sum_j aux_j (gamma M gamma^T)_jj)``.

    ``main`` is a float (``alpha`` in filter mode, ``alpha / n`` in feature mode), ``aux`` a
    float or one weight per covariate, ``metric`` the ``(K-1, K-1)`` matrix ``M`` or ``None``
    for the identity (the solvers' coordinates).
    """

    main: float
    aux: Any
    metric: Any = None

    def _metric(self, A):
        return A if self.metric is None else A @ self.metric

    def _aux(self, gamma):
        return self.aux * gamma if isinstance(self.aux, float) else self.aux[:, None] * gamma

    def value(self, T, gamma, xp, main_sum=None):
        """The penalty as a Python float (a lazy dask scalar when ``T`` is a row array on a
        cluster: feature mode's ``T`` has a row per sample; see :func:`sdlearn._rows.floats`).
        ``main_sum`` is ``tr(T M T^T)`` if known."""
        if main_sum is None and self.main:
            main_sum = scalar_sum(T * self._metric(T), xp)
        total = self.main * main_sum if self.main else 0.0
        if gamma is not None and gamma.shape[0]:
            total += float(xp.sum(self._aux(gamma) * self._metric(gamma)))
        return 0.5 * total

    def gradient(self, T, gamma):
        """Gradients with respect to ``T`` and ``gamma`` (``None`` stays ``None``)."""
        g_T = self.main * self._metric(T)
        g_gamma = None if gamma is None else self._aux(self._metric(gamma))
        return g_T, g_gamma


def ridge_of(alpha, mode, n_samples, n_classes, xp, dtype, device):
    """The penalty of the objective in the user's units (see the module docstring)."""
    metric = None if n_classes <= 2 else xp.asarray(contrast_metric(n_classes), dtype=dtype, device=device)
    main = float(alpha) if mode == "filter" else float(alpha) / n_samples
    return Ridge(main=main, aux=float(alpha), metric=metric)


def class_probabilities(S, xp):
    """Probabilities of classes 1..K-1 and the log-partition for baseline-class scores ``S``.

    Returns
    -------
    P : array of shape (n, K - 1)
    log_partition : array of shape (n,)
        ``log(1 + sum_j exp(S_j))``, computed without overflow.
    """
    shift = xp.maximum(xp.max(S, axis=1), xp.zeros((), dtype=S.dtype, device=device_of(S)))
    E = xp.exp(S - shift[:, None])
    base = xp.exp(-shift)
    total = base + xp.sum(E, axis=1)
    return E / total[:, None], shift + xp.log(total)


def logistic_loss_grad(S, Y, w, xp, score_map=None, lazy=False):
    """Weighted multinomial logistic loss and its gradient with respect to the scores.

    Parameters
    ----------
    S : array of shape (n, K - 1)
        Class scores against the baseline class (``S @ score_map`` if given).
    Y : array of shape (n, K - 1)
        One-hot labels (baseline rows all zero).
    w : array of shape (n,)
        Sample weights.
    score_map : array of shape (K - 1, K - 1), default=None
        Symmetric map from the coordinates of ``S`` to the contrast scores.

    lazy : bool, default=False
        For a dask ``S``, leave the loss a lazy dask scalar (to compute it with other values in
        one round trip, or not at all).

    Returns
    -------
    loss : float
        ``sum_i w_i l(y_i, s_i)``.
    G : array of shape (n, K - 1)
        The gradient of the loss with respect to ``S``: ``w_i (p_i - y_i)`` (times
        ``score_map``); a persisted row array for a dask ``S``.
    """
    if is_dask(S):  # one task per row chunk; the loss a lazy sum of per-row losses
        table = _loss_table(S, Y, w, score_map)
        loss = table[:, -1].sum()
        return (loss if lazy else float(loss)), table[:, :-1]
    row_loss, G = _loss_rows(S, Y, w, xp, score_map)
    return float(xp.sum(row_loss)), G


def _loss_rows(S, Y, w, xp, score_map):
    """Per-sample weighted losses and the gradient rows (see :func:`logistic_loss_grad`)."""
    if score_map is not None:
        S = S @ score_map
    P, log_partition = class_probabilities(S, xp)
    row_loss = w * (log_partition - xp.sum(S * Y, axis=1))
    G = w[:, None] * (P - Y)
    return row_loss, (G if score_map is None else G @ score_map)


def _loss_and_gradient_rows(S, Y, w, score_map):
    """``[G, per-row loss]`` of a row chunk (NumPy)."""
    row_loss, G = _loss_rows(S, Y, w, np, score_map)
    return np.concatenate([G, row_loss[:, None]], axis=1)


def full_probabilities(S, xp):
    """Probabilities of all K classes (baseline first) from baseline-class scores ``S``."""
    P, log_partition = class_probabilities(S, xp)
    p0 = xp.exp(-log_partition)
    return xp.concat([p0[:, None], P], axis=1)


def _dense(product, X, xp):
    """A product with ``X`` as an array of the namespace (SciPy sparse ``X`` gives NumPy)."""
    return xp.asarray(product) if sp.issparse(X) else product


def aux_scores(X_aux, gamma, b):
    """``X_aux gamma + b`` (just ``b`` broadcast when there are no covariates)."""
    if X_aux is None or X_aux.shape[1] == 0 or gamma is None:
        return b
    return X_aux @ gamma + b


def classifier_block(W, C, beta, mode):
    """``T``, the classifier block of the lifted matrix: ``W beta`` (filter) or ``C beta``."""
    return W @ beta if mode == "filter" else C @ beta


def scores(X, X_aux, T, gamma, b, mode, xp):
    """Class scores from the classifier block ``T``, the covariates' weights and the intercept."""
    main = _dense(X @ T, X, xp) if mode == "filter" else T
    return main + aux_scores(X_aux, gamma, b)


def class_scores(X, X_aux, W, C, beta, gamma, b, mode, xp):
    """Class scores of the factored model (``C`` is only read in feature mode)."""
    return scores(X, X_aux, classifier_block(W, C, beta, mode), gamma, b, mode, xp)


class ClassifierValue(NamedTuple):
    """The classifier part of the objective at a point: logistic ``loss``, ridge ``penalty``,
    the gradient ``G`` of the loss with respect to the scores, and the ``scores``."""

    loss: float
    penalty: float
    G: Any
    scores: Any
    rows: Any = None  # on a cluster: the per-sample weighted losses (a row array), summed later

    @property
    def value(self):
        return self.loss + self.penalty


def classifier_value(X, Y, w, X_aux, point, *, ridge, mode, xp, score_map=None, S=None, lazy=False):
    """Value of the classifier part at ``point = (T, gamma, b)`` (scores ``S`` if known).

    On rows of a dask cluster the scores are persisted on the workers, and the loss and the
    penalty (a sum over the samples in feature mode) are computed together in one round trip,
    or with ``lazy`` left lazy dask scalars (see :func:`logistic_loss_grad`).
    """
    T, gamma, b = point
    S = keep(scores(X, X_aux, T, gamma, b, mode, xp) if S is None else S)  # the scores are read again
    if not is_dask(S):
        loss, G = logistic_loss_grad(S, Y, w, xp, score_map)
        return ClassifierValue(loss, ridge.value(T, gamma, xp), G, S)
    table = _loss_table(S, Y, w, score_map)
    G, rows = table[:, :-1], table[:, -1]
    if lazy:
        return ClassifierValue(rows.sum(), ridge.value(T, gamma, xp), G, S, rows)
    sums = row_sums({"loss": ("sum", rows), "TT": ("dot", T, ridge._metric(T)) if is_dask(T) and ridge.main
                     else ("dot", None)}, xp)
    penalty = ridge.value(T, gamma, xp, main_sum=sums["TT"] if is_dask(T) else None)
    return ClassifierValue(sums["loss"], penalty, G, S, rows)


def _loss_table(S, Y, w, score_map):
    """``[G, per-row loss]`` of row-chunked scores, persisted on the workers (one task per chunk)."""
    return keep(row_map(_loss_and_gradient_rows, S, Y, w, ncols=Y.shape[1] + 1, dtype=S.dtype,
                        score_map=None if score_map is None else np.asarray(score_map)))


def gradient_sums(X, X_aux, G, *, mode, with_aux, xp):
    """The sums over the samples in the classifier part's gradient: ``X^T G`` (filter mode),
    ``X_aux^T G`` and the column sums of ``G``; lazy for rows on a cluster (compute them with
    :func:`sdlearn._rows.hosts`, with other values in the same round trip)."""
    if X.distributed:  # one task per row chunk for all three
        return X.gradient_sums(G, X_aux if with_aux else None, with_X=mode == "filter")
    return (
        X.T.lazy_matmul(G) if mode == "filter" else None,  # X: a data matrix (sdlearn._data)
        X_aux.T @ G if with_aux else None,
        xp.sum(G, axis=0),
    )


def classifier_gradient(X, X_aux, point, G, *, ridge, mode, xp, sums=None):
    """Gradient of the classifier part at ``point = (T, gamma, b)`` from the score gradient ``G``:
    ``(X^T G or G) + ridge``, ``X_aux^T G + ridge`` and the column sums of ``G``; ``sums`` are
    the computed :func:`gradient_sums` if known (otherwise computed here, in one round trip for
    rows on a cluster)."""
    T, gamma, _ = point
    g_T, g_gamma = ridge.gradient(T, gamma)
    if sums is None:
        sums = hosts(*gradient_sums(X, X_aux, G, mode=mode, with_aux=gamma is not None, xp=xp))
    XtG, AtG, column_sums = sums
    g_T = g_T + (_dense(XtG, X, xp) if mode == "filter" else G)
    if gamma is not None:
        g_gamma = g_gamma + AtG
    return g_T, g_gamma, column_sums


def _reconstruction_sums(X, W, C, xp):
    """The sums over the samples that the squared residual ``||X - C W^T||_F^2`` needs (without
    forming the dense n x p residual; sparse X too): ``sum (X W) * C`` and ``C^T C`` (lazy for
    rows on a cluster)."""
    return xp.sum(_dense(X @ W, X, xp) * C), C.T @ C


def _reconstruction_from(sq_norm_X, cross, CtC, W, xp):
    """``||X - C W^T||_F^2`` from ``||X||_F^2`` and the :func:`_reconstruction_sums`."""
    quad = float(xp.sum(CtC * (W.T @ W)))
    return max(sq_norm_X - 2.0 * float(cross) + quad, 0.0)


def sdl_objective(X, Y, w, X_aux, W, C, beta, gamma, b, *, xi, alpha=None, mode, xp, sq_norm_X=None,
                  ridge=None, score_map=None):
    """Value of the SDL objective and its parts for the factored model.

    ``alpha`` gives the penalty of the module docstring; a solver passes its own ``ridge``
    (and ``score_map``) instead.

    Returns
    -------
    parts : dict
        ``objective`` (the total), ``logistic``, ``reconstruction`` (``xi`` times the squared
        residual) and ``penalty``.
    """
    if ridge is None:
        ridge = ridge_of(alpha, mode, Y.shape[0], Y.shape[1] + 1, xp, Y.dtype, device_of(Y))
    point = (classifier_block(W, C, beta, mode), gamma, b)
    cls = classifier_value(X, Y, w, X_aux, point, ridge=ridge, mode=mode, xp=xp, score_map=score_map, lazy=True)
    if sq_norm_X is None:
        sq_norm_X = X.squared_norm() if hasattr(X, "squared_norm") else squared_norm(X, xp)
    loss, penalty, cross, CtC = hosts(cls.loss, cls.penalty, *_reconstruction_sums(X, W, C, xp))  # one round trip
    cls = cls._replace(loss=float(loss), penalty=float(penalty))
    recon = xi * _reconstruction_from(sq_norm_X, cross, CtC, W, xp)
    return {
        "objective": cls.loss + cls.penalty + recon,
        "logistic": cls.loss,
        "reconstruction": recon,
        "penalty": cls.penalty,
    }
