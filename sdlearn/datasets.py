"""Synthetic data from the SDL generative model, with the true parameters."""

import numpy as np
from sklearn.utils import Bunch, check_random_state


def make_sdl_classification(
    n_samples=500,
    n_features=50,
    n_components=5,
    *,
    n_classes=2,
    n_aux=0,
    mode="filter",
    noise=1.0,
    class_sep=1.0,
    separate_dictionary=False,
    nonnegative=False,
    random_state=None,
):
    """Draw data from the planted SDL model and return it with the true parameters.

    Features are ``x_i = W* h_i + noise * eps_i`` (``eps_i`` standard Gaussian), so the
    maximum-likelihood weight of the reconstruction term is ``xi = 1 / (2 noise^2)``.
    Labels follow the multinomial logistic model with the first class as baseline and scores

    * ``mode='feature'``: ``s_i = beta*^T h_i + gamma*^T x'_i + b*``;
    * ``mode='filter'``: ``s_i = beta*^T z_i + gamma*^T x'_i + b*`` with ``z_i = W_Y^T x_i``,
      the filter of the features by the discriminative dictionary ``W_Y`` (unit-norm atoms).

    ``W_Y = W*`` (normalised) unless ``separate_dictionary=True``, in which case ``W_Y`` is
    drawn independently: the discriminative directions differ from the reconstructive ones
    (the regime where supervised dictionary learning beats the two-step pipeline).

    Parameters
    ----------
    n_samples : int, default=500
        Number of samples ``n``.
    n_features : int, default=50
        Number of reconstructed features ``p``.
    n_components : int, default=5
        Rank ``r`` of the planted dictionary.
    n_classes : int, default=2
        Number of classes ``K``.
    n_aux : int, default=0
        Number of auxiliary covariates (standard Gaussian) entering the labels.
    mode : {'filter', 'feature'}, default='filter'
        How labels are generated (see above).
    noise : float, default=1.0
        Standard deviation of the feature noise.
    class_sep : float, default=1.0
        Standard deviation of the entries of ``beta*`` and ``gamma*``: larger is easier.
    separate_dictionary : bool, default=False
        Generate labels from a discriminative dictionary independent of ``W*`` (filter mode).
    nonnegative : bool, default=False
        Nonnegative atoms and codes (uniform), features clipped at 0: count-like data.
    random_state : int, RandomState instance or None, default=None
        Seed.

    Returns
    -------
    data : Bunch
        ``data`` (n, p) features; ``target`` (n,) labels in ``0..K-1``; ``aux`` (n, n_aux)
        covariates or ``None``; ``dictionary`` (r, p) true atoms (rows, scaled so entries
        have unit variance); ``codes`` (n, r); ``coef`` (K-1, r) true ``beta*`` transposed;
        ``aux_coef`` (K-1, n_aux); ``intercept`` (K-1,); ``filter`` (K-1, p) the effective
        linear classifier of the features (filter mode); ``discriminative_dictionary`` (r, p);
        ``proba`` (n, K) true class probabilities (their argmax is the Bayes rule);
        ``xi`` the matching reconstruction weight; ``mode``.

    Examples
    --------
    >>> from sdlearn.datasets import make_sdl_classification
    >>> d = make_sdl_classification(n_samples=100, n_features=20, n_components=3, random_state=0)
    >>> d.data.shape, d.target.shape, d.dictionary.shape
    ((100, 20), (100,), (3, 20))
    """
    if mode not in ("filter", "feature"):
        raise ValueError(f"mode must be 'filter' or 'feature', got {mode!r}.")
    if not 1 <= n_components <= min(n_samples, n_features):
        raise ValueError(f"n_components must be in [1, min(n_samples, n_features)], got {n_components}.")
    if n_classes < 2:
        raise ValueError(f"n_classes must be at least 2, got {n_classes}.")
    rng = check_random_state(random_state)
    n, p, r, d = n_samples, n_features, n_components, n_classes - 1

    if nonnegative:
        atoms = rng.uniform(0.0, 1.0, size=(p, r))
        atoms *= np.sqrt(p) / np.linalg.norm(atoms, axis=0)
        codes = rng.uniform(0.0, 1.0, size=(n, r))
        X = np.clip(codes @ atoms.T + noise * rng.standard_normal((n, p)), 0.0, None)
    else:
        atoms = np.linalg.qr(rng.standard_normal((p, r)))[0] * np.sqrt(p)
        codes = rng.standard_normal((n, r))
        X = codes @ atoms.T + noise * rng.standard_normal((n, p))

    if separate_dictionary:
        other = rng.uniform(0.0, 1.0, size=(p, r)) if nonnegative else rng.standard_normal((p, r))
        discriminative = other / np.linalg.norm(other, axis=0)
    else:
        discriminative = atoms / np.linalg.norm(atoms, axis=0)
    beta = class_sep * rng.standard_normal((r, d))
    X_aux = rng.standard_normal((n, n_aux)) if n_aux else None
    gamma = class_sep * rng.standard_normal((n_aux, d))
    if mode == "filter":
        # z = W_Y^T x / sqrt(p) has the scale of the codes when W_Y = W*
        features = X @ discriminative / np.sqrt(p)
        effective_filter = (discriminative @ beta / np.sqrt(p)).T
    else:
        features = codes
        effective_filter = None
    scores = features @ beta
    if X_aux is not None:
        scores = scores + X_aux @ gamma
    intercept = -scores.mean(axis=0)  # roughly balanced classes
    scores = scores + intercept
    full = np.hstack([np.zeros((n, 1)), scores])
    proba = np.exp(full - full.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    target = (rng.uniform(size=(n, 1)) > np.cumsum(proba, axis=1)).sum(axis=1)
    return Bunch(
        data=X, target=target, aux=X_aux, dictionary=atoms.T, codes=codes, coef=beta.T,
        aux_coef=gamma.T, intercept=intercept, filter=effective_filter,
        discriminative_dictionary=discriminative.T, proba=proba,
        xi=1.0 / (2.0 * noise**2) if noise > 0 else np.inf, mode=mode,
    )
