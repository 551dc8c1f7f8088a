"""The SDL objective in one place: multinomial logistic loss, its gradient, and the full objective.

Conventions (rows are samples, as at the public API):

* ``X`` (n, p) features, ``X_aux`` (n, q) auxiliary covariates or ``None``;
* ``Y`` (n, K - 1) one-hot labels with class 0 as the baseline (its row is all zeros);
* ``w`` (n,) per-sample weights of the logistic loss (class weights);
* ``W`` (p, r) dictionary, ``C`` (n, r) codes (the paper's ``H`` transposed),
  ``beta`` (r, K - 1), ``gamma`` (q, K - 1), ``b`` (K - 1,) intercept.

Class scores (the logits of classes 1..K-1 against the baseline):

* filter mode: ``S = X W beta + X_aux gamma + b``;
* feature mode: ``S = C beta + X_aux gamma + b``.

The objective is::

    F = sum_i w_i l(y_i, s_i) + xi ||X - C W^T||_F^2 + penalty

with ``l(y, s) = log(1 + sum_j exp(s_j)) - s_y`` (``s_0 = 0``) and the ridge penalty

* filter: ``alpha / 2 (||W beta||_F^2 + ||gamma||_F^2)``, a ridge on the effective linear
  classifier ``W beta`` of the features, as in ``LogisticRegression(C=1/alpha)``;
* feature: ``alpha / 2 (||C beta||_F^2 / n + ||gamma||_F^2)``, a ridge on the mean squared score.

Both penalties are functions of the lifted matrix, so LPGD and BCD minimise the same objective.
"""

import scipy.sparse as sp

from ._backend import squared_norm


def logistic_curvature(n_classes):
    """Upper bound of the Hessian of the multinomial logistic loss with respect to the scores.

    ``1/4`` for two classes (the sigmoid), ``1/2`` otherwise (Böhning's bound).
    """
    return 0.25 if n_classes <= 2 else 0.5


def class_probabilities(S, xp):
    """Probabilities of classes 1..K-1 and the log-partition for baseline-class scores ``S``.

    Returns
    -------
    P : array of shape (n, K - 1)
    log_partition : array of shape (n,)
        ``log(1 + sum_j exp(S_j))``, computed without overflow.
    """
    shift = xp.maximum(xp.max(S, axis=1), xp.zeros((), dtype=S.dtype, device=S.device))
    E = xp.exp(S - shift[:, None])
    base = xp.exp(-shift)
    total = base + xp.sum(E, axis=1)
    return E / total[:, None], shift + xp.log(total)


def logistic_loss_grad(S, Y, w, xp):
    """Weighted multinomial logistic loss and its gradient with respect to the scores.

    Parameters
    ----------
    S : array of shape (n, K - 1)
        Class scores against the baseline class.
    Y : array of shape (n, K - 1)
        One-hot labels (baseline rows all zero).
    w : array of shape (n,)
        Sample weights.

    Returns
    -------
    loss : float
        ``sum_i w_i l(y_i, s_i)``.
    G : array of shape (n, K - 1)
        ``w_i (p_i - y_i)``, the gradient of the loss with respect to ``S``.
    """
    P, log_partition = class_probabilities(S, xp)
    loss = float(xp.sum(w * (log_partition - xp.sum(S * Y, axis=1))))
    return loss, w[:, None] * (P - Y)


def full_probabilities(S, xp):
    """Probabilities of all K classes (baseline first) from baseline-class scores ``S``."""
    P, log_partition = class_probabilities(S, xp)
    p0 = xp.exp(-log_partition)
    return xp.concat([p0[:, None], P], axis=1)


def aux_scores(X_aux, gamma, b):
    """``X_aux gamma + b`` (just ``b`` broadcast when there are no covariates)."""
    if X_aux is None or X_aux.shape[1] == 0:
        return b
    return X_aux @ gamma + b


def reconstruction_error(X, W, C, xp, sq_norm_X=None):
    """``||X - C W^T||_F^2`` without forming the dense n x p residual (works for sparse X)."""
    if sq_norm_X is None:
        sq_norm_X = squared_norm(X, xp)
    XW = X @ W
    if sp.issparse(X):
        XW = xp.asarray(XW)
    cross = float(xp.sum(XW * C))
    quad = float(xp.sum((C.T @ C) * (W.T @ W)))
    return max(sq_norm_X - 2.0 * cross + quad, 0.0)


def class_scores(X, X_aux, W, C, beta, gamma, b, mode):
    """Class scores of the factored model (``C`` is only read in feature mode)."""
    if mode == "filter":
        main = X @ (W @ beta)
    else:
        main = C @ beta
    return main + aux_scores(X_aux, gamma, b)


def penalty(W, C, beta, gamma, alpha, mode, xp):
    """The ridge penalty of the objective (see the module docstring)."""
    if alpha == 0:
        return 0.0
    if mode == "filter":
        main = float(xp.sum((W @ beta) ** 2))
    else:
        main = float(xp.sum((C @ beta) ** 2)) / C.shape[0]
    aux = 0.0 if gamma is None or gamma.shape[0] == 0 else float(xp.sum(gamma * gamma))
    return 0.5 * alpha * (main + aux)


def sdl_objective(X, Y, w, X_aux, W, C, beta, gamma, b, *, xi, alpha, mode, xp, sq_norm_X=None):
    """Value of the SDL objective and its parts for the factored model.

    Returns
    -------
    parts : dict
        ``objective`` (the total), ``logistic``, ``reconstruction`` (``xi`` times the squared
        residual) and ``penalty``.
    """
    S = class_scores(X, X_aux, W, C, beta, gamma, b, mode)
    if sp.issparse(X):
        S = xp.asarray(S)
    logistic, _ = logistic_loss_grad(S, Y, w, xp)
    recon = xi * reconstruction_error(X, W, C, xp, sq_norm_X)
    pen = penalty(W, C, beta, gamma, alpha, mode, xp)
    return {
        "objective": logistic + recon + pen,
        "logistic": logistic,
        "reconstruction": recon,
        "penalty": pen,
    }
