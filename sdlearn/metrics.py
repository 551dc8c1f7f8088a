"""What convergence and estimation experiments need: objective gaps, rates, factor errors, topics."""

import numpy as np


def objective_gap(objective, optimum=None, *, relative=True):
    """Gap of a sequence of objective values to the optimum.

    Parameters
    ----------
    objective : array-like of shape (n_iter,)
        Objective values, e.g. ``result.history['objective']`` of :func:`sdlearn.lpgd`.
    optimum : float or None, default=None
        Optimal value; ``None`` takes the smallest value of ``objective``.
    relative : bool, default=True
        Divide the gap by ``|optimum|``.

    Returns
    -------
    gap : ndarray of shape (n_iter,)
        ``objective - optimum`` (over ``|optimum|`` when ``relative``).

    Examples
    --------
    >>> from sdlearn.metrics import objective_gap
    >>> objective_gap([3.0, 2.5, 2.0], optimum=2.0)
    array([0.5 , 0.25, 0.  ])
    """
    values = np.asarray(objective, dtype=float)
    best = float(np.min(values)) if optimum is None else float(optimum)
    gap = values - best
    return gap / max(abs(best), np.finfo(float).tiny) if relative else gap


def linear_rate(gap, *, low=1e-10, high=1e-2):
    """Contraction factor per iteration of a linearly converging gap.

    Fits ``log(gap_t) = a + t log(rho)`` by least squares on the iterations where
    ``low <= gap_t <= high`` (the transient before ``high`` and the precision floor below
    ``low`` are left out) and returns ``rho``.

    Parameters
    ----------
    gap : array-like of shape (n_iter,)
        Objective gaps (see :func:`objective_gap`), one per iteration.
    low : float, default=1e-10
        Smallest gap used in the fit.
    high : float, default=1e-2
        Largest gap used in the fit.

    Returns
    -------
    rho : float
        Fitted rate in (0, 1) for linear convergence (smaller is faster); NaN when fewer than
        three iterations lie in the window.

    Examples
    --------
    >>> import numpy as np
    >>> from sdlearn.metrics import linear_rate
    >>> round(linear_rate(0.5 ** np.arange(40)), 3)
    0.5
    """
    gap = np.asarray(gap, dtype=float)
    t = np.arange(len(gap))
    keep = (gap >= low) & (gap <= high) & np.isfinite(gap)
    if keep.sum() < 3:
        return float("nan")
    slope = np.polyfit(t[keep], np.log(gap[keep]), 1)[0]
    return float(np.exp(slope))


def subspace_distance(A, B):
    """Sine of the largest principal angle between the row spaces of ``A`` and ``B``.

    Zero when the spans coincide, one when a direction of one is orthogonal to the other.
    Invariant to any invertible reparametrisation of the atoms (rotation, scaling, order,
    sign), so it measures dictionary recovery "up to GL(r)". Uses
    :func:`scipy.linalg.subspace_angles`.

    Parameters
    ----------
    A : array-like of shape (k, n_features)
        Atoms as rows, e.g. ``SDLClassifier.components_``.
    B : array-like of shape (l, n_features)
        Atoms as rows, e.g. the true ``dictionary`` of
        :func:`sdlearn.datasets.make_sdl_classification`.

    Returns
    -------
    distance : float
        ``sin`` of the largest principal angle, in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from sdlearn.metrics import subspace_distance
    >>> A = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    >>> round(subspace_distance(A, 3 * A[::-1]), 12)
    0.0
    >>> round(subspace_distance(A, np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])), 3)
    0.707
    """
    from scipy.linalg import subspace_angles

    A = np.atleast_2d(np.asarray(A, dtype=float))
    B = np.atleast_2d(np.asarray(B, dtype=float))
    if A.shape[1] != B.shape[1]:
        raise ValueError(f"A and B need the same number of columns, got {A.shape[1]} and {B.shape[1]}.")
    return float(np.sin(np.max(subspace_angles(A.T, B.T))))


def effective_filter(components, coef, mode="feature"):
    """The linear classifier of the features implied by a dictionary and its weights.

    In filter mode the scores are ``beta^T W^T x``, so the filter is ``W beta``. In feature
    mode the (least-squares) codes are ``h = (W^T W)^+ W^T x`` and the scores ``beta^T h`` read
    ``x`` through ``W (W^T W)^+ beta``. Unlike ``W`` and ``beta`` the feature-mode filter is
    invariant to reparametrising the atoms (``W -> W G``, ``beta -> G^-1 beta``, codes ``h -> G^T h``), so estimation errors of the coefficients are measured on it.

    Parameters
    ----------
    components : array-like of shape (n_components, n_features)
        Atoms as rows (``W`` transposed).
    coef : array-like of shape (n_classes - 1, n_components)
        Weights of the atoms (``beta`` transposed).
    mode : {'feature', 'filter'}, default='feature'
        How the classifier reads the features (see above).

    Returns
    -------
    filter : ndarray of shape (n_classes - 1, n_features)
        One linear filter of the features per non-baseline class.

    Examples
    --------
    >>> import numpy as np
    >>> from sdlearn.metrics import effective_filter
    >>> effective_filter(np.array([[2.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 1.0]]))
    array([[0.5, 1. ]])
    >>> effective_filter(np.array([[2.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 1.0]]), mode="filter")
    array([[2., 1.]])
    """
    W = np.asarray(components, dtype=float).T
    beta = np.atleast_2d(np.asarray(coef, dtype=float)).T
    if mode == "filter":
        return (W @ beta).T
    if mode != "feature":
        raise ValueError(f"mode must be 'feature' or 'filter', got {mode!r}.")
    return (np.linalg.pinv(W.T) @ beta).T


def top_words(components, vocabulary, n_words=10):
    """The heaviest words of each atom (topic) of a dictionary learnt on word counts.

    Parameters
    ----------
    components : array-like of shape (n_components, n_words_total)
        Atoms as rows (e.g. ``SDLClassifier(nonnegative=True).components_``, or
        ``NMF.components_``).
    vocabulary : array-like of shape (n_words_total,)
        Word of each column (e.g. ``CountVectorizer.get_feature_names_out()``).
    n_words : int, default=10
        Words per atom.

    Returns
    -------
    topics : list of list of str
        For each atom, its ``n_words`` words by decreasing weight.

    Examples
    --------
    >>> from sdlearn.metrics import top_words
    >>> top_words([[0.1, 0.7, 0.2], [0.5, 0.0, 0.4]], ["pay", "remote", "team"], n_words=2)
    [['remote', 'team'], ['pay', 'team']]
    """
    components = np.atleast_2d(np.asarray(components, dtype=float))
    vocabulary = np.asarray(vocabulary)
    if components.shape[1] != len(vocabulary):
        raise ValueError(f"components has {components.shape[1]} columns but vocabulary {len(vocabulary)} words.")
    order = np.argsort(-components, axis=1, kind="stable")[:, :n_words]
    return [[str(vocabulary[j]) for j in row] for row in order]
