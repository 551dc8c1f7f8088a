"""What both solvers share: the prepared problem, the result they return, and small linear algebra."""

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from ._backend import array_api_compat, device_of, get_namespace, squared_norm, to_numpy
from ._objective import logistic_curvature

MODES = ("filter", "feature")


@dataclass
class Problem:
    """An SDL problem with encoded labels, ready for a solver (internal)."""

    X: Any
    Y: Any
    w: Any
    X_aux: Any
    classes: np.ndarray
    xp: Any
    mode: str
    n_components: int
    xi: float
    alpha: float
    sq_norm_X: float

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

    def zeros(self, *shape):
        return self.xp.zeros(shape, dtype=self.dtype, device=device_of(self.Y))

    def asarray(self, a):
        """Move a host array (or scalar list) to the problem's namespace, device and dtype."""
        return self.xp.asarray(a, dtype=self.dtype, device=device_of(self.Y))

    def dense(self, a):
        """Result of a product with a (possibly sparse) ``X`` as an array of the namespace."""
        return self.xp.asarray(a) if sp.issparse(self.X) else a


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
        ``stationarity`` (norm of the gradient mapping); ``time`` (seconds since the start).
    n_iter : int
        Iterations run.
    converged : bool
        Whether the stopping tolerance was reached before ``max_iter``.
    solver, mode : str
        Which solver and model produced the result.
    state : dict
        Solver state for a warm start (pass the result as ``init``).
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


def prepare_problem(X, y, *, X_aux, sample_weight, mode, n_components, xi, alpha, classes=None):
    """Validate solver inputs and encode labels (the function API's input checks).

    Raises
    ------
    ValueError
        With the name of the offending argument: bad shapes, NaN/inf, a single class,
        ``n_components`` out of range, ``X_aux`` with another number of rows, a bad ``mode``.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be 'filter' or 'feature', got {mode!r}.")
    if not (xi > 0 and np.isfinite(xi)):
        raise ValueError(
            f"xi must be a positive finite number, got {xi!r}; for xi = 0 the dictionary is "
            "not identified: use LogisticRegression."
        )
    if not (alpha >= 0 and np.isfinite(alpha)):
        raise ValueError(f"alpha must be a non-negative finite number, got {alpha!r}.")
    xp = get_namespace(X, X_aux)
    if getattr(X, "ndim", None) != 2:
        raise ValueError(f"X must be a 2-D array of shape (n_samples, n_features), got {getattr(X, 'shape', None)}.")
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
    if sp.issparse(X):
        X = X if X.dtype in (np.float32, np.float64) else X.astype(np.float64)
    elif not xp.isdtype(X.dtype, "real floating"):
        X = xp.astype(X, xp.float64)
    one_hot = np.zeros((n, len(classes) - 1))
    rows = np.flatnonzero(y_index > 0)
    one_hot[rows, y_index[rows] - 1] = 1.0
    dev = device_of(X)
    Y = xp.asarray(one_hot, dtype=X.dtype, device=dev)
    if sample_weight is None:
        w = xp.ones((n,), dtype=Y.dtype, device=dev)
    else:
        w_host = np.asarray(to_numpy(sample_weight), dtype=float)
        if w_host.shape != (n,) or not np.all(np.isfinite(w_host)) or np.any(w_host < 0):
            raise ValueError(f"sample_weight must be {n} finite non-negative numbers.")
        w = xp.asarray(w_host, dtype=Y.dtype, device=dev)
    if X_aux is not None:
        if getattr(X_aux, "ndim", None) != 2 or X_aux.shape[0] != n:
            raise ValueError(
                f"X_aux must be 2-D with one row per sample ({n} rows), got shape {getattr(X_aux, 'shape', None)}."
            )
        _check_finite(X_aux, "X_aux", xp)
        X_aux = xp.astype(X_aux, Y.dtype) if X_aux.dtype != Y.dtype else X_aux
        if X_aux.shape[1] == 0:
            X_aux = None
    return Problem(
        X=X, Y=Y, w=w, X_aux=X_aux, classes=classes, xp=xp, mode=mode,
        n_components=int(n_components), xi=float(xi), alpha=float(alpha),
        sq_norm_X=squared_norm(X, xp),
    )


def check_step_size(step_size):
    """``step_size`` must be 'auto' or a positive number."""
    if step_size != "auto" and not (isinstance(step_size, (int, float)) and step_size > 0):
        raise ValueError(f"step_size must be 'auto' or a positive number, got {step_size!r}.")


def _check_finite(A, name, xp):
    values = A.data if sp.issparse(A) else A
    if sp.issparse(A):
        ok = np.all(np.isfinite(values))
    else:
        ok = bool(xp.all(xp.isfinite(values)))
    if not ok:
        raise ValueError(f"{name} contains NaN or infinity; impute or drop those entries first.")


def initial_intercept(problem):
    """Log-odds of the weighted class frequencies against the baseline class."""
    xp = problem.xp
    counts = xp.concat([
        xp.reshape(xp.sum(problem.w) - xp.sum(problem.w[:, None] * problem.Y), (1,)),
        xp.sum(problem.w[:, None] * problem.Y, axis=0),
    ])
    counts = counts + 1.0  # Laplace smoothing keeps empty classes finite
    return xp.log(counts[1:]) - xp.log(counts[0])


def top_eigenvalue(M, xp):
    """Largest eigenvalue of a small symmetric positive semi-definite matrix."""
    if M.shape[0] == 0:
        return 0.0
    return float(xp.max(xp.linalg.eigvalsh(M)))


def aux_design_curvature(problem):
    """``c_K lambda_max(Z^T diag(w) Z)`` for the auxiliary block ``Z = [X_aux, 1]``."""
    xp = problem.xp
    ones = xp.ones((problem.n_samples, 1), dtype=problem.dtype, device=device_of(problem.Y))
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


class History:
    """Per-iteration record of the objective, its parts, stationarity and wall time."""

    KEYS = ("objective", "logistic", "reconstruction", "penalty", "stationarity", "time")

    def __init__(self, verbose=0, name="sdl"):
        self.data = {key: [] for key in self.KEYS}
        self.start = time.perf_counter()
        self.verbose = verbose
        self.name = name

    def append(self, parts, stationarity):
        for key in ("objective", "logistic", "reconstruction", "penalty"):
            self.data[key].append(float(parts[key]))
        self.data["stationarity"].append(float(stationarity))
        self.data["time"].append(time.perf_counter() - self.start)
        t = len(self.data["objective"]) - 1
        if self.verbose and (self.verbose > 1 or t % 10 == 0):
            print(
                f"[{self.name}] iter {t:4d}  objective {parts['objective']:.6e}  "
                f"logistic {parts['logistic']:.4e}  recon {parts['reconstruction']:.4e}  "
                f"stationarity {stationarity:.3e}  {self.data['time'][-1]:.2f}s"
            )

    def relative_decrease(self):
        """Decrease of the objective over the last iteration relative to its classifier part.

        The reconstruction term can be orders of magnitude larger than the logistic loss and
        almost constant; measured against the whole objective, a stopping rule would end the
        run before the classifier is trained. Infinity before two entries exist.
        """
        f = self.data["objective"]
        if len(f) < 2:
            return float("inf")
        scale = self.data["logistic"][-1] + self.data["penalty"][-1]
        return (f[-2] - f[-1]) / max(abs(scale), 1e-12 * abs(f[-1]), 1e-300)
