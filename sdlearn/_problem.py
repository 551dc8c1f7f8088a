"""What both solvers share: the prepared (rescaled) problem, the result they return, and small
linear algebra.

The rescaled problem
--------------------
The solvers never work in the user's units. :func:`prepare_problem` maps the problem to one with
the same minimiser and entries of order one:

* ``X / sigma`` (``sigma`` a power of two near the root mean square of ``X``; see
  :mod:`sdlearn._data`), each covariate column divided by its own power of two ``tau_j``, and the
  loss weights divided by a power of two ``kappa`` near their mean. The objective divided by
  ``kappa`` has the same minimiser with ``xi sigma^2 / kappa`` in place of ``xi`` and ridge
  weights ``alpha / (sigma^2 kappa)`` (filter), ``alpha / kappa`` (feature) and
  ``alpha / (tau_j^2 kappa)``; the factors map back exactly (codes times ``sigma``, ``beta``
  divided by it, ``gamma_j`` divided by ``tau_j``). Powers of two make every map exact, so data
  scaled by ``2^k`` (with ``xi`` scaled by ``2^-2k``) gives the same iterates to the last bit.
  A weight far outside the float range (``xi sigma^2 / kappa`` beyond about ``1e+-98`` in
  float64, ``1e+-12`` in float32) is clipped there: one term then outweighs the other far
  beyond what rounding can see, and the minimiser is the same to float precision. ``alpha = 0``
  is clipped the same way, to the smallest ridge: the objective stays coercive, so no iterate
  runs off to infinity on separable classes.
* The classifier's variables (the lifted block ``T``, ``gamma``, ``b``, BCD's ``beta``) live in
  coordinates ``V M^(1/2)`` of the contrasts ``V``, where the ridge is Euclidean. For K >= 3
  classes, relabelling the classes then acts on them by an orthogonal matrix, so every step of
  every solver (gradient steps, projections, Newton-CG, step-size rules) commutes with it and
  the fit does not depend on the order of the labels. The scores in these coordinates map to the
  contrast scores by ``score_map = M^(-1/2)``.
"""

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_array

from ._backend import array_api_compat, device_of, get_namespace, is_numpy_namespace, to_numpy
from ._data import (
    DataMatrix,
    column_scales,
    data_scale,
    max_abs,
    power_of_two_scale,
    scale_columns,
    times_power_of_two,
)
from ._objective import Ridge, contrast_roots, logistic_curvature, sdl_objective

MODES = ("filter", "feature")


class NonFiniteError(FloatingPointError, ValueError):
    """A fitted parameter would not be finite (raised instead of returning such a model)."""


@dataclass(frozen=True)
class Scales:
    """Powers of two relating the user's units to the solvers' (see the module docstring):
    ``data`` (``sigma``), ``aux`` (``tau``, one per covariate, host array) and ``loss``
    (``kappa``)."""

    data: float
    aux: Any
    loss: float


@dataclass
class Problem:
    """An SDL problem, rescaled and with encoded labels, ready for a solver (internal).

    ``X`` is a :class:`~sdlearn._data.DataMatrix` (the only access to the features), the other
    arrays live in the namespace ``xp``; ``xi`` and ``ridge`` are the rescaled weights.
    """

    X: Any
    Y: Any
    w: Any
    X_aux: Any
    classes: np.ndarray
    xp: Any
    mode: str
    n_components: int
    xi: float
    ridge: Ridge
    score_map: Any
    score_map_inverse: Any
    scales: Scales
    ridge_aux_max: float = 0.0

    @property
    def n_samples(self):
        return self.X.shape[0]

    @property
    def n_features(self):
        return self.X.shape[1]

    @property
    def n_aux(self):
        return 0 if self.X_aux is None else self.X_aux.shape[1]

    @property
    def n_scores(self):
        return self.Y.shape[1]

    @property
    def curvature(self):
        return logistic_curvature(len(self.classes))

    @property
    def dtype(self):
        return self.Y.dtype

    @property
    def device(self):
        return device_of(self.Y)

    @property
    def rtol(self):
        """Relative tolerance of the descent tests: ``1e-12``, or a hundred units of rounding
        of the dtype when that is larger (float32), so rounding noise never fails a test."""
        return max(1e-12, 100.0 * float(self.xp.finfo(self.dtype).eps))

    @property
    def sq_norm_X(self):
        return self.X.squared_norm()

    def zeros(self, *shape):
        return self.xp.zeros(shape, dtype=self.dtype, device=self.device)

    def asarray(self, a):
        """Move a host array (or scalar list) to the problem's namespace, device and dtype."""
        return self.xp.asarray(a, dtype=self.dtype, device=self.device)

    def objective(self, W, C, beta, gamma, b):
        """Parts of the rescaled objective at factors in the solvers' coordinates."""
        return sdl_objective(
            self.X, self.Y, self.w, self.X_aux, W, C, beta, gamma, b, xi=self.xi, mode=self.mode,
            xp=self.xp, sq_norm_X=self.sq_norm_X, ridge=self.ridge, score_map=self.score_map,
        )

    def in_user_units(self, parts):
        """History values of the rescaled objective in the user's units (times ``kappa``)."""
        return {key: self.scales.loss * value for key, value in parts.items()}

    def contrasts(self, V):
        """Classifier variables (rows) from the solvers' coordinates to the contrasts."""
        return V if self.score_map is None else V @ self.score_map

    def to_user(self, W, C, beta, gamma, b):
        """Factors in the user's units and on the contrasts (exact maps by powers of two;
        ``C`` and ``gamma`` may be ``None``).

        Raises
        ------
        NonFiniteError
            If a parameter is not finite, with the setting to change.
        """
        xp, e = self.xp, _exponent(self.scales.data)
        beta, b = self.contrasts(beta), self.contrasts(b[None, :])[0, :]
        gamma = None if gamma is None else self.contrasts(gamma)
        self._check_range("components", W, 0)
        self._check_range("coef", beta, -e)
        self._check_range("intercept", b, 0)
        beta = times_power_of_two(beta, -e, xp)
        if C is not None:
            self._check_range("codes", C, e)
            C = times_power_of_two(C, e, xp)
        if gamma is not None:
            for j, t in enumerate(self.scales.aux):
                self._check_range("aux_coef", gamma[j:j + 1, :], -_exponent(float(t)))
            gamma = scale_columns(gamma.T, self.scales.aux, xp).T
        return W, C, beta, gamma, b

    def _check_range(self, name, A, k):
        """Raise unless ``A * 2**k`` is a finite number of the data's dtype (checked before
        multiplying: no overflow)."""
        largest = max_abs(A, self.xp)
        limit = math.frexp(float(self.xp.finfo(self.dtype).max))[1]  # what predictions compute in
        if math.isfinite(largest) and (largest == 0.0 or math.frexp(largest)[1] + k <= limit):
            return
        raise NonFiniteError(
            f"the fitted {name} would not be finite: at the scale of this data (X's entries are about "
            f"{self.scales.data:.1e}) they leave the float range. Rescale X and X_aux (e.g. with "
            "StandardScaler), or increase alpha."
        )


@dataclass
class SDLResult:
    """Factors, history and solver state returned by :func:`lpgd` and :func:`bcd`.

    Attributes
    ----------
    components : array of shape (n_components, n_features)
        Dictionary atoms, one per row (the paper's ``W`` transposed).
    codes : array of shape (n_samples, n_components)
        Codes of the training samples (the paper's ``H`` transposed).
    coef : array of shape (n_classes - 1, n_components)
        Classifier weights ``beta`` of the codes (feature mode) or of ``W^T x`` (filter mode),
        one row per non-baseline class.
    aux_coef : array of shape (n_classes - 1, n_aux)
        Weights ``gamma`` of the auxiliary covariates.
    intercept : array of shape (n_classes - 1,)
        Intercepts of the non-baseline classes.
    classes : ndarray of shape (n_classes,)
        Class labels; the first one is the baseline class with score 0.
    history : dict of lists
        Per iteration: ``objective`` and its parts ``logistic``, ``reconstruction``, ``penalty``;
        ``stationarity`` (norm of the gradient mapping of the rescaled problem the solver works
        on, so it does not depend on the units of the data); ``time`` (seconds since the start).
    n_iter : int
        Iterations run.
    converged : bool
        Whether the stopping tolerance was reached before ``max_iter`` (``False`` when a
        callback stopped the run).
    solver, mode : str
        Which solver and model produced the result.
    state : dict
        Solver state for a warm start (pass the result as ``init``), in the solver's units
        (``state['scales'].data`` is the power of two that divides ``X``). LPGD's also holds
        ``basis`` (the orthonormal basis ``U`` of the rank-r subspace of the lifted matrix),
        ``projected_block`` (the block ``B`` such that ``U`` spans the top ``n_components``
        left singular vectors of ``[A / state['scales'].data, B]``, with ``A = X.T`` in filter
        mode and ``X`` in feature mode) and ``projection`` (the projector used, 'gram' or
        'subspace').
    """

    components: Any
    codes: Any
    coef: Any
    aux_coef: Any
    intercept: Any
    classes: np.ndarray
    history: dict
    n_iter: int
    converged: bool
    solver: str
    mode: str
    state: dict = field(repr=False, default_factory=dict)

    @property
    def objective(self):
        """Final value of the objective."""
        return self.history["objective"][-1]


def warm_start(init, problem, solver, key):
    """The state of a previous result of ``solver`` (which holds ``key``), checked against this
    problem (mode, classes, covariates), and its covariate weights in this problem's units.

    Raises
    ------
    ValueError
        When ``init`` comes from another solver or mode, other classes or other covariates.
    """
    state = init.state
    if init.solver != solver or init.mode != problem.mode or key not in state:
        raise ValueError(f"init must be a {solver.upper()} result in mode {problem.mode!r}, got a {init.solver} "
                         f"result in mode {init.mode!r}.")
    if list(init.classes) != list(problem.classes):
        raise ValueError(f"init was fitted on the classes {list(init.classes)}, not {list(problem.classes)}.")
    gamma = state["gamma"]
    if (gamma is None) != (problem.X_aux is None) or (gamma is not None and gamma.shape[0] != problem.n_aux):
        raise ValueError("init was fitted with a different number of auxiliary covariates.")
    if gamma is not None:  # gamma_j scales as tau_j
        gamma = gamma * problem.asarray(problem.scales.aux / state["scales"].aux)[:, None]
    return state, gamma


def _exponent(power_of_two):
    return math.frexp(power_of_two)[1] - 1


def _weight_limit(finfo):
    """Weights of the rescaled problem stay within ``2**+-limit``: about 1e+-98 in float64 and
    1e+-12 in float32, far beyond what the rounding of the other terms can see, and far from
    overflow in products with data of order one."""
    return int(0.32 * math.frexp(float(finfo.max))[1])


def _clipped(value, log2_scale, limit):
    """``value * 2**log2_scale`` for a positive float, clipped to ``2**+-limit`` (exact
    within the range)."""
    mantissa, exponent = math.frexp(value)
    log2_value = exponent + log2_scale
    if -limit < log2_value < limit:
        return math.ldexp(mantissa, log2_value)
    return math.ldexp(1.0, -limit if log2_value < 0 else limit)


def as_matrix(A, name, xp):
    """A 2-D array of a real floating dtype (or a CSR/CSC matrix) from any array-like; arrays of
    the namespace pass through without a copy."""
    if sp.issparse(A):
        A = A.tocsr() if A.format not in ("csr", "csc") else A
        if A.dtype not in (np.float32, np.float64):
            A = A.astype(np.float64)
        return A
    if not array_api_compat.is_array_api_obj(A) or is_numpy_namespace(xp):
        A = check_array(A, dtype=(np.float64, np.float32), ensure_all_finite=False, ensure_min_samples=1,
                        input_name=name)
        return xp.asarray(A)
    if getattr(A, "ndim", None) != 2:
        raise ValueError(f"{name} must be a 2-D array of shape (n_samples, n_features), got shape {tuple(A.shape)}.")
    return A if xp.isdtype(A.dtype, "real floating") else xp.astype(A, xp.float64)


def prepare_problem(X, y, *, X_aux, sample_weight, mode, n_components, xi, alpha, classes=None, scales=None):
    """Validate solver inputs, encode labels and rescale (the function API's input checks).

    Parameters
    ----------
    scales : Scales, default=None
        Fix the rescaling (a stream keeps that of its first batch); computed from the data when
        ``None``.

    Raises
    ------
    ValueError
        With the name of the offending argument: bad shapes, NaN/inf, a single class,
        ``n_components`` out of range, ``X_aux`` with another number of rows, a bad ``mode``,
        weights that sum to zero.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be 'filter' or 'feature', got {mode!r}.")
    if not (xi > 0 and math.isfinite(xi)):
        raise ValueError(
            f"xi must be a positive finite number, got {xi!r}; for xi = 0 the dictionary is "
            "not identified: use LogisticRegression."
        )
    if not (alpha >= 0 and math.isfinite(alpha)):
        raise ValueError(f"alpha must be a non-negative finite number, got {alpha!r}.")
    xp = get_namespace(*(a for a in (X, X_aux) if array_api_compat.is_array_api_obj(a)))
    X = as_matrix(X, "X", xp)
    n, p = X.shape
    _check_finite(X, "X", xp)
    if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)) or not 1 <= n_components <= min(n, p):
        raise ValueError(
            f"n_components must be an integer in [1, min(n_samples, n_features)] = [1, {min(n, p)}], "
            f"got {n_components!r}."
        )
    y_host = np.asarray(to_numpy(y))
    if y_host.ndim != 1 or y_host.shape[0] != n:
        raise ValueError(f"y must be 1-D with {n} entries (one per row of X), got shape {y_host.shape}.")
    if y_host.dtype.kind in "fc" and not np.all(np.isfinite(y_host)):
        raise ValueError("y contains NaN or infinity; every sample needs a class label.")
    classes_given = classes
    if classes is None:
        classes, y_index = np.unique(y_host, return_inverse=True)
    else:  # fixed classes (streaming): a batch may miss some, but none may be new
        classes = np.asarray(classes)
        y_index = np.searchsorted(classes, y_host)
        unknown = (y_index >= len(classes)) | (classes[np.minimum(y_index, len(classes) - 1)] != y_host)
        if np.any(unknown):
            raise ValueError(f"y holds labels not in classes: {np.unique(y_host[unknown]).tolist()}.")
    if len(classes) < 2:
        raise ValueError(f"y must contain at least two classes, got only {classes.tolist()}.")
    one_hot = np.zeros((n, len(classes) - 1))
    rows = np.flatnonzero(y_index > 0)
    one_hot[rows, y_index[rows] - 1] = 1.0
    Y = xp.asarray(one_hot, dtype=X.dtype, device=device_of(X))
    w_host = _sample_weight(sample_weight, n)
    if classes_given is None:
        _check_class_weights(w_host, y_index, classes)
    if X_aux is not None:
        X_aux = as_matrix(X_aux, "X_aux", xp)
        if sp.issparse(X_aux):
            X_aux = xp.asarray(X_aux.toarray())
        if X_aux.shape[0] != n:
            raise ValueError(f"X_aux must be 2-D with one row per sample ({n} rows), got shape {tuple(X_aux.shape)}.")
        _check_finite(X_aux, "X_aux", xp)
        X_aux = xp.astype(X_aux, Y.dtype) if X_aux.dtype != Y.dtype else X_aux
        if X_aux.shape[1] == 0:
            X_aux = None
    if scales is None:
        sigma, sq_norm = data_scale(X, xp)
        tau = None if X_aux is None else column_scales(X_aux, xp)
        scales = Scales(data=sigma, aux=tau, loss=power_of_two_scale(_mean(w_host)))
    else:
        sq_norm = None
    return _rescaled(X, Y, w_host, X_aux, classes, xp, mode, int(n_components), xi, alpha, scales, sq_norm)


def _rescaled(X, Y, w_host, X_aux, classes, xp, mode, r, xi, alpha, scales, sq_norm):
    """The problem of the solvers (see the module docstring)."""
    n = X.shape[0]
    e_data, e_loss = _exponent(scales.data), _exponent(scales.loss)
    w = xp.asarray(w_host / scales.loss, dtype=Y.dtype, device=device_of(Y))
    limit = _weight_limit(xp.finfo(Y.dtype))
    xi_internal = _clipped(float(xi), 2 * e_data - e_loss, limit)
    # alpha = 0 is clipped like any weight: the smallest ridge keeps the objective coercive, so
    # no iterate can run off to infinity (separable classes), and changes nothing else
    alpha = max(float(alpha), 5e-324)
    if mode == "filter":
        main = _clipped(alpha, -2 * e_data - e_loss, limit)
    else:
        main = _clipped(alpha, -e_loss, limit) / n
    aux, aux_max = 0.0, 0.0
    if X_aux is not None:
        X_aux = scale_columns(X_aux, scales.aux, xp)
        weights = [_clipped(alpha, -2 * _exponent(float(t)) - e_loss, limit) for t in scales.aux]
        aux, aux_max = xp.asarray(np.asarray(weights), dtype=Y.dtype, device=device_of(Y)), max(weights)
    root, inverse_root = contrast_roots(len(classes))
    to_xp = (lambda a: None if a is None else xp.asarray(a, dtype=Y.dtype, device=device_of(Y)))  # noqa: E731
    return Problem(
        X=DataMatrix(X, xp, scales.data, sq_norm), Y=Y, w=w, X_aux=X_aux, classes=classes, xp=xp, mode=mode,
        n_components=r, xi=xi_internal, ridge=Ridge(main=main, aux=aux), score_map=to_xp(inverse_root),
        score_map_inverse=to_xp(root), scales=scales, ridge_aux_max=aux_max,
    )


def _sample_weight(sample_weight, n):
    if sample_weight is None:
        return np.ones(n)
    w = np.asarray(to_numpy(sample_weight), dtype=float)
    if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"sample_weight must be {n} finite non-negative numbers.")
    if not np.any(w > 0):
        raise ValueError("sample_weight is zero for every sample: at least one sample must have a positive weight.")
    return w


def _check_class_weights(w, y_index, classes):
    """Every class present needs a positive total weight: the loss would not see a class of
    weight zero, and its scores would run off to minus infinity."""
    totals = np.bincount(y_index, weights=w, minlength=len(classes))
    if np.any(totals <= 0):
        raise ValueError(
            f"the samples of class(es) {classes[totals <= 0].tolist()} all have weight zero (sample_weight / "
            "class_weight): give each class a positive weight or drop its samples."
        )


def _mean(w):
    """Mean of non-negative ``w`` without overflow."""
    top = float(np.max(w))
    return top * float(np.mean(w / top))


def _check_finite(A, name, xp):
    if sp.issparse(A):
        ok = np.all(np.isfinite(A.data))
    else:
        ok = bool(xp.all(xp.isfinite(A)))
    if not ok:
        raise ValueError(f"{name} contains NaN or infinity; impute or drop those entries first.")


def initial_intercept(problem):
    """Log-odds of the weighted class frequencies against the baseline class (solvers'
    coordinates)."""
    xp = problem.xp
    counts = xp.concat([
        xp.reshape(xp.sum(problem.w) - xp.sum(problem.w[:, None] * problem.Y), (1,)),
        xp.sum(problem.w[:, None] * problem.Y, axis=0),
    ])
    counts = counts + 1.0  # Laplace smoothing keeps empty classes finite
    b = xp.log(counts[1:]) - xp.log(counts[0])
    return b if problem.score_map_inverse is None else b @ problem.score_map_inverse


def top_eigenvalue(M, xp):
    """Largest eigenvalue of a small symmetric positive semi-definite matrix."""
    if M.shape[0] == 0:
        return 0.0
    return float(xp.max(xp.linalg.eigvalsh(M)))


def aux_design_curvature(problem):
    """``c_K lambda_max(Z^T diag(w) Z)`` for the auxiliary block ``Z = [X_aux, 1]``."""
    xp = problem.xp
    ones = xp.ones((problem.n_samples, 1), dtype=problem.dtype, device=problem.device)
    Z = ones if problem.X_aux is None else xp.concat([problem.X_aux, ones], axis=1)
    return problem.curvature * top_eigenvalue(Z.T @ (problem.w[:, None] * Z), xp)


def sign_flip(W, *others):
    """Flip atom signs so that each atom's largest-magnitude entry is positive.

    ``W`` holds atoms as columns; ``others`` are (array, axis) pairs whose slices along ``axis``
    belong to the same atoms and flip with them. Makes the factors deterministic.
    """
    xp = array_api_compat.array_namespace(W)
    idx = xp.argmax(xp.abs(W), axis=0)
    signs = xp.sign(xp.take_along_axis(W, idx[None, :], axis=0)[0, :])
    signs = xp.where(signs == 0, xp.ones_like(signs), signs)
    flipped = [W * signs[None, :]]
    for array, axis in others:
        flipped.append(array * (signs[None, :] if axis == 1 else signs[:, None]))
    return flipped
