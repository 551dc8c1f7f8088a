"""BCD: block coordinate descent on the nonconvex (factored) SDL objective.

Blocks, updated cyclically (the objective is convex in each one with the others fixed):

* filter mode: dictionary ``W`` -> codes ``C`` -> classifier ``(beta, gamma, b)``;
* feature mode: dictionary ``W`` -> classifier ``(beta, gamma, b)`` -> codes ``C``.

A block that is plain least squares without constraints (the codes in filter mode, the dictionary
in feature mode) is solved exactly. The dictionary (filter) and codes (feature), which feel both
the reconstruction and the classifier, take ``block_max_iter`` projected-gradient steps with step
``1 / L_block`` from their own curvature bound (never one global step: the reconstruction and
classifier curvatures differ by orders of magnitude). The classifier block is a ridge logistic
regression on ``r + q + 1`` columns: it takes ``block_max_iter`` Newton-CG steps with Armijo
backtracking (Hessian-vector products only), because gradient steps crawl there and that block
limits the progress per sweep (with gradient steps BCD needed hundreds of sweeps on planted data,
with Newton steps about ten). With ``nonnegative`` the dictionary and codes are kept
nonnegative (supervised NMF, e.g. topics of count data).

The optional diminishing search radius of Lyu's BCD-DR (the paper's convergence guarantee,
an eps-stationary point in ``O(eps^-1 (log eps^-1)^2)`` iterations) limits each block's move to
``r_t = radius / ((t + 1)^radius_decay log(t + 2))`` at outer iteration ``t``; a longer move is
shortened along its direction, which keeps the iterate feasible and, by convexity of the block,
does not increase the objective.

After every outer iteration atoms are rescaled to unit norm (codes and coefficients compensate),
which leaves the objective unchanged and removes the scale ambiguity of the factorization.

The block updates are public functions of this module (:func:`update_dictionary`,
:func:`update_codes`, :func:`update_classifier`) over a :class:`BlockState`, so that the
streaming fit runs the same code step. Like LPGD, everything runs on the rescaled problem of
:mod:`sdlearn._problem`, and every search is bounded.
"""

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import validate_params

from ._history import History, LazyFactors, relative_decrease
from ._coding import ridge_solve
from ._logistic import logistic_block
from ._objective import classifier_gradient, classifier_value
from ._params import BCD, COMMON, DATA, INIT_BCD
from ._problem import SDLResult, as_matrix, initial_intercept, prepare_problem, sign_flip, top_eigenvalue, warm_start
from ._projection import make_projector
from ._rows import clip_nonnegative, host, hosts, keep

_MAX_DOUBLINGS = 60  # the adaptive step search doubles its curvature estimate at most this often
_MIN_TRIAL = 2.0 ** -40  # smallest curvature estimate tried, relative to the block's bound


@validate_params(
    {**DATA, **COMMON, **BCD, "init": INIT_BCD},
    prefer_skip_nested_validation=True,
)
def bcd(
    X,
    y,
    *,
    n_components,
    mode="filter",
    X_aux=None,
    sample_weight=None,
    xi=1.0,
    alpha=1.0,
    nonnegative=False,
    max_iter=200,
    tol=1e-6,
    block_max_iter=5,
    step_size="auto",
    radius=None,
    radius_decay=0.5,
    init=None,
    random_state=None,
    verbose=0,
    callback=None,
):
    """Fit SDL by block coordinate descent on the factored (nonconvex) objective.

    Parameters
    ----------
    X : array-like or sparse matrix of shape (n_samples, n_features)
        Features to reconstruct and classify from.
    y : array-like of shape (n_samples,)
        Class labels; the smallest label is the baseline class.
    n_components : int
        Number of dictionary atoms ``r``, at most ``min(n_samples, n_features)``.
    mode : {'filter', 'feature'}, default='filter'
        Classify from ``W^T x`` (filter) or from the codes ``h`` (feature).
    X_aux : array-like of shape (n_samples, n_aux), default=None
        Auxiliary covariates: enter the classifier linearly, are not reconstructed.
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the logistic loss terms (class weights).
    xi : float, default=1.0
        Weight of the reconstruction error; must be positive.
    alpha : float, default=1.0
        Ridge penalty of the classifier (see :class:`sdlearn.SDLClassifier`).
    nonnegative : bool, default=False
        Keep the dictionary and the codes nonnegative (needs nonnegative ``X``).
    max_iter : int, default=200
        Maximum number of outer iterations (sweeps over the blocks).
    tol : float, default=1e-6
        Stop when the decrease of the objective over one iteration falls below ``tol``
        times its classifier part (logistic loss + penalty): the reconstruction term can be
        far larger and nearly constant, so it is not the scale that measures progress.
    block_max_iter : int, default=5
        Projected-gradient steps per block and sweep (Newton-CG steps for the classifier).
    step_size : 'auto' or float, default='auto'
        'auto' takes ``1 / L_block``. A float ``rho`` takes ``rho / L_block``; a sweep that
        increases the objective is undone and ``rho`` halved (and capped at 1, the step of the
        curvature bound).
    radius : float or None, default=None
        Constant of the diminishing search radius; ``None`` is plain BCD.
    radius_decay : float, default=0.5
        Exponent of the radius schedule (0.5 is the theory's ``c / (sqrt(t) log t)``).
    init : None, 'random', SDLResult or array-like of shape (n_components, n_features), \
            default=None
        ``None`` starts from the truncated SVD of ``X`` (absolute values when nonnegative)
        and a zero classifier; 'random' from random atoms and coefficients (seeded by
        ``random_state``); an SDLResult of BCD on the same data warm-starts from it; an array
        is the initial dictionary (atoms as rows, as ``components``), with least-squares codes
        and a zero classifier.
    random_state : int, RandomState instance or None, default=None
        Seeds the randomized SVD and the random initialisation.
    verbose : int, default=0
        1 shows a progress bar with the objective (tqdm; without tqdm a line every 10
        iterations), 2 prints a line per iteration.
    callback : callable, default=None
        ``callback(iteration, factors, entry)``, called for the starting point (iteration 0)
        and after each iteration: ``factors`` has the attributes of an :class:`SDLResult` for
        the current iterate (built only when read), ``entry`` the iteration's values of
        ``history``. Returning ``True`` stops the fit.

    Returns
    -------
    result : SDLResult
        Factors, history (objective, its parts, stationarity, time per iteration) and state.

    Raises
    ------
    ValueError
        For invalid arguments, naming the argument; a ``FloatingPointError`` (also a
        ``ValueError``) when a fitted parameter would not be finite.
    """
    problem = prepare_problem(
        X, y, X_aux=X_aux, sample_weight=sample_weight, mode=mode,
        n_components=n_components, xi=xi, alpha=alpha,
    )
    if nonnegative:
        problem.X.check_non_negative("bcd with nonnegative=True (X)")
    state = BlockState(nonnegative=nonnegative, n_steps=int(block_max_iter), adaptive=step_size == "auto",
                       rho=1.0 if step_size == "auto" else float(step_size))
    history = History("bcd", max_iter, verbose, callback)
    solver = _BCD(problem, state, check_random_state(random_state))
    try:
        return solver.run(history, max_iter=max_iter, tol=tol, radius=radius, radius_decay=radius_decay, init=init)
    finally:
        history.close()


@dataclass
class BlockState:
    """What BCD's block updates carry from one call to the next.

    Attributes
    ----------
    nonnegative : bool
        Keep the dictionary and the codes nonnegative.
    n_steps : int
        Projected-gradient steps per block (Newton-CG steps for the classifier).
    adaptive : bool
        Adapt the gradient steps to the local curvature (``step_size='auto'``).
    rho : float
        Multiplier of the steps ``rho / L`` when not adaptive.
    radius : float or None
        The current search radius (``None``: no limit).
    data_curvature : float
        ``c_K max_i w_i ||X||_2^2`` (filter mode's dictionary block).
    curvature : dict
        Curvature estimates accepted last time, per adaptive block.
    """

    nonnegative: bool = False
    n_steps: int = 5
    adaptive: bool = True
    rho: float = 1.0
    radius: float = None
    data_curvature: float = 0.0
    curvature: dict = field(default_factory=dict)


# -- the block updates (public: the streaming fit runs the code step) -----------------------
def _norm(a, xp):
    return math.sqrt(float(xp.sum(a * a)))


def _limit(new, old, state, xp):
    """Shorten the move ``new - old`` to the current search radius."""
    if state.radius is None:
        return new
    step = _norm(new - old, xp)
    if step <= state.radius:
        return new
    return keep(old + (state.radius / step) * (new - old))


def _feasible(a, state, xp):
    return clip_nonnegative(a, xp) if state.nonnegative else a


def _settle(value, riders, point, *sums):
    """``value(point)`` and ``sums`` as floats, with the values ``riders`` asks for at ``point``
    (see :class:`_FactorBlock`), all in one round trip on a cluster."""
    lazy = value(point)
    extras = [] if riders is None else riders.extras()
    computed = hosts(lazy, *sums, *extras)
    if extras:
        riders.store(computed[1 + len(sums):])
    return tuple(float(v) for v in computed[:1 + len(sums)])


def projected_gradient(x, gradient, L, state, xp, *, constrained=True, value=None, key=None, rtol=1e-12,
                       riders=None):
    """``state.n_steps`` projected-gradient steps; returns the point and the first
    gradient-mapping norm (the block's stationarity measure).

    ``L`` is a global curvature bound of the block. ``gradient`` and ``value`` may return lazy
    values for a row array ``x`` (codes on a dask cluster): each trial's value and the two sums
    of its descent test are computed together, in one round trip, with what ``riders`` (an
    object with ``extras()`` and ``store(values)``) asks to compute at the same point (the next
    gradient's sums). With ``value`` (and adaptive
    steps) the steps adapt instead: each starts from half the curvature accepted last time for this block
    (but not below ``2^-40 L``) and doubles it until the descent-lemma bound holds, never
    beyond ``L`` (and at most ``_MAX_DOUBLINGS`` times). The bound is loose where the logistic loss is flat (its
    curvature bound ``c_K ||X||^2`` holds at the worst point only), and adaptive steps are what
    keep BCD from stalling.
    """
    adaptive = value is not None and state.adaptive
    current = _settle(value, riders, x)[0] if adaptive else None
    first = None
    for _ in range(state.n_steps):
        g = keep(gradient(x))
        if adaptive:  # never more than 2^40 times the safe step: a stale estimate cannot overflow
            trial = max(min(0.5 * state.curvature.get(key, 2.0 * L), L), L * _MIN_TRIAL)
        else:
            trial = L / state.rho
        for _ in range(_MAX_DOUBLINGS):
            candidate = x - g / trial
            if constrained:
                candidate = _feasible(candidate, state, xp)
            candidate = keep(candidate)
            move = candidate - x
            if not adaptive:
                break
            candidate_value, slope, squares = _settle(value, riders, candidate, xp.sum(g * move),
                                                      xp.sum(move * move))
            bound = current + slope + 0.5 * trial * squares
            if candidate_value <= bound + rtol * abs(current) or trial >= L:
                current = candidate_value
                break
            trial = min(2.0 * trial, L)
        if adaptive:
            state.curvature[key] = trial
        if first is None:
            first = (math.sqrt(squares) if adaptive else _norm(move, xp)) * trial
        x = candidate
    return x, (0.0 if first is None else first)


def least_squares_block(problem, state, Z, BtB, cross):
    """Update ``Z`` in ``xi ||X' - B Z^T||^2`` given ``BtB = B^T B`` and ``cross = X'^T B``.

    Unconstrained: exact solve. Nonnegative: projected gradient with step 1 / (2 xi L).
    Returns the new block and its stationarity measure at the old point.
    """
    xp, xi = problem.xp, problem.xi
    gradient = lambda V: 2.0 * xi * (V @ BtB - cross)  # noqa: E731
    if state.nonnegative:
        L = 2.0 * xi * max(top_eigenvalue(BtB, xp), 1e-12)
        return projected_gradient(Z, gradient, L, state, xp, rtol=problem.rtol)
    solution = ridge_solve(BtB, cross, xp)
    # a column of B that is zero leaves its column of Z out of the objective: keep it (the
    # solve would zero it, and a zero atom would stay zero for the rest of the run)
    used = xp.linalg.diagonal(BtB) > 0
    return keep(xp.where(used[None, :], solution, Z)), _norm(gradient(Z), xp)


def _reconstruction(problem, V, gram, cross):
    """``xi (tr(V^T V gram) - 2 tr(V^T cross))``: the block's reconstruction term up to a
    constant (a lazy scalar when ``V`` is a row array: the sums are left to the caller)."""
    xp = problem.xp
    return problem.xi * (xp.sum((V.T @ V) * gram) - 2.0 * xp.sum(V * cross))


def _classifier(problem, T, gamma, b, lazy=False):
    pb = problem
    return classifier_value(pb.X, pb.Y, pb.w, pb.X_aux, (T, gamma, b), ridge=pb.ridge, mode=pb.mode, xp=pb.xp,
                            score_map=pb.score_map, lazy=lazy)


def _classifier_T_gradient(problem, T, gamma, b, G=None, XtG=None):
    """Gradient of the classifier part with respect to ``T = W beta`` or ``C beta`` (``G``, the
    score gradient at ``T``, and ``X^T G`` if known)."""
    pb = problem
    if G is None:
        G = _classifier(pb, T, gamma, b, lazy=True).G  # the loss itself is not needed
    if pb.mode == "feature":  # no sum over the samples: the gradient is a row array
        return classifier_gradient(pb.X, pb.X_aux, (T, None, b), G, ridge=pb.ridge, mode=pb.mode, xp=pb.xp,
                                   sums=(None, None, None))[0]
    XtG = host(pb.X.T.lazy_matmul(G)) if XtG is None else XtG
    return classifier_gradient(pb.X, pb.X_aux, (T, None, b), G, ridge=pb.ridge, mode=pb.mode, xp=pb.xp,
                               sums=(XtG, None, None))[0]


class _FactorBlock:
    """Gradient, curvature bound and value (up to a constant) of the objective in a factor
    ``V`` that the classifier reads through ``T = V beta``: the dictionary in filter mode
    (``gram = C^T C``, ``cross = X^T C``), the codes in feature mode (``W^T W``, ``X W``).
    ``data_curvature`` bounds the logistic curvature along ``T``.

    Each value remembers the score gradient ``G`` at its point, which the gradient at the same
    point (an accepted trial) reuses. On a cluster in filter mode each value also asks (as
    ``riders`` of :func:`projected_gradient`) for ``X^T G`` at the same point, so that the
    gradient there needs no further round trip.
    """

    def __init__(self, problem, gram, cross, beta, gamma, b, data_curvature):
        pb, xp = problem, problem.xp
        self.pb, self.gram, self.cross, self.beta, self.gamma, self.b = pb, gram, cross, beta, gamma, b
        bbT = beta @ beta.T
        curvature = 2.0 * pb.xi * top_eigenvalue(gram, xp) + (data_curvature + pb.ridge.main) * top_eigenvalue(bbT, xp)
        self.curvature = max(curvature, 1e-12)
        self._pending = self._known = self._scored = None

    def gradient(self, V):
        pb = self.pb
        if self._known is not None and self._known[0] is V:
            known = self._known
        elif self._scored is not None and self._scored[0] is V:
            known = (V, self._scored[1], None)
        else:
            known = (None, None, None)
        # d/dV of the classifier part is (d/dT) beta^T with T = V beta
        g_T = _classifier_T_gradient(pb, V @ self.beta, self.gamma, self.b, known[1], known[2])
        return 2.0 * pb.xi * (V @ self.gram - self.cross) + g_T @ self.beta.T

    def value(self, V):
        """The value at ``V`` (a lazy scalar for row arrays; see :func:`projected_gradient`)."""
        pb = self.pb
        cls = _classifier(pb, V @ self.beta, self.gamma, self.b, lazy=True)
        self._scored = (V, cls.G)
        if pb.distributed and pb.mode == "filter":
            self._pending = (V, cls.G, pb.X.T.lazy_matmul(cls.G))
        return cls.value + _reconstruction(pb, V, self.gram, self.cross)

    def extras(self):
        """Lazy values to compute with the last :meth:`value`: ``X^T G`` at its point."""
        return [] if self._pending is None else [self._pending[2]]

    def store(self, values):
        """Keep the computed :meth:`extras` for :meth:`gradient` at the same point."""
        self._known = (self._pending[0], self._pending[1], values[0])
        self._pending = None

    def __iter__(self):  # gradient, curvature, value = block
        return iter((self.gradient, self.curvature, self.value))


def _factor_block(problem, gram, cross, beta, gamma, b, data_curvature):
    return _FactorBlock(problem, gram, cross, beta, gamma, b, data_curvature)


def dictionary_gradient(problem, state, C, beta, gamma, b):
    """Gradient, curvature bound and value (up to a constant) of the objective in ``W``
    (filter mode: the classifier reads ``X W beta``)."""
    CtC, XtC = hosts(C.T @ C, problem.X.T.lazy_matmul(C))  # one round trip on a cluster
    return _factor_block(problem, CtC, XtC, beta, gamma, b, state.data_curvature)


def codes_gradient(problem, state, W, beta, gamma, b):
    """Gradient, curvature bound and value (up to a constant) of the objective in the codes
    ``C`` (feature mode: the classifier reads ``C beta``)."""
    curv_w = problem.curvature * problem.max_weight
    return _factor_block(problem, W.T @ W, keep(problem.X @ W), beta, gamma, b, curv_w)


def update_dictionary(problem, state, W, C, beta, gamma, b):
    """The dictionary block: least squares (feature mode) or projected-gradient steps (filter
    mode, where the classifier reads ``X W beta``). Returns the new ``W`` (within the search
    radius) and the block's stationarity measure."""
    pb = problem
    if pb.mode == "feature":
        new, stationarity = least_squares_block(pb, state, W, *hosts(C.T @ C, pb.X.T.lazy_matmul(C)))
    else:
        block = dictionary_gradient(pb, state, C, beta, gamma, b)
        new, stationarity = projected_gradient(W, block.gradient, block.curvature, state, pb.xp, value=block.value,
                                               key="dictionary", rtol=pb.rtol, riders=block)
    return _limit(new, W, state, pb.xp), stationarity


def update_codes(problem, state, W, C, beta, gamma, b):
    """The code block: least squares (filter mode) or projected-gradient steps on the codes,
    which the classifier reads in feature mode (the step of the streaming fit too). Returns the
    new codes (within the search radius) and the block's stationarity measure."""
    pb = problem
    if pb.mode == "filter":
        new, stationarity = least_squares_block(pb, state, C, W.T @ W, keep(pb.X @ W))
    else:
        block = codes_gradient(pb, state, W, beta, gamma, b)
        new, stationarity = projected_gradient(C, block.gradient, block.curvature, state, pb.xp, value=block.value,
                                               key="codes", rtol=pb.rtol, riders=block)
    return _limit(new, C, state, pb.xp), stationarity


def classifier_block(problem, W, C, with_aux):
    """The classifier block ``theta = [beta; gamma; b]`` (stacked rows): a ridge logistic
    regression of the labels on ``[features, X_aux, 1]`` with penalty
    ``main/2 tr(beta^T Q beta) + 1/2 sum_j aux_j ||gamma_j||^2`` (``Q = W^T W`` or ``C^T C``)."""
    pb, xp = problem, problem.xp
    F = pb.X @ W if pb.mode == "filter" else C
    Q = W.T @ W if pb.mode == "filter" else host(C.T @ C)
    ones = pb.X.ones(1)
    design = xp.concat([F, pb.X_aux, ones] if with_aux else [F, ones], axis=1)
    return logistic_block(design, Q, F.shape[1], pb.n_aux, pb)


def stack_classifier(beta, gamma, b, xp):
    """``[beta; gamma; b]`` (``gamma`` may be ``None``)."""
    return xp.concat([beta, b[None, :]] if gamma is None else [beta, gamma, b[None, :]], axis=0)


def split_classifier(theta, r, with_aux):
    """``theta = [beta; gamma; b]`` back into its parts."""
    return theta[:r, :], (theta[r:-1, :] if with_aux else None), theta[-1, :]


def update_classifier(problem, state, W, C, beta, gamma, b):
    """Newton-CG steps on the classifier block (small and smooth: gradient steps crawl there,
    and that block is what limits BCD's progress per sweep). Returns ``(beta, gamma, b)``
    (within the search radius) and the block's stationarity measure."""
    xp = problem.xp
    with_aux = gamma is not None
    theta = stack_classifier(beta, gamma, b, xp)
    new, stationarity = classifier_block(problem, W, C, with_aux).newton(theta, state.n_steps)
    return split_classifier(_limit(new, theta, state, xp), beta.shape[0], with_aux), stationarity


# -- the run ------------------------------------------------------------------------------------
class _BCD:
    """Initialisation, sweeps and bookkeeping of one BCD run (internal)."""

    def __init__(self, problem, state, rng):
        self.pb, self.xp, self.state, self.rng = problem, problem.xp, state, rng
        self.values = []  # the rescaled objective per iterate (the stopping rule reads it)

    def run(self, history, *, max_iter, tol, radius, radius_decay, init):
        pb, state = self.pb, self.state
        factors = self._initial_point(init)
        n_iter, converged = 0, False
        stop = self._record(history, factors, float("nan"), n_iter)
        order = ("dictionary", "codes", "classifier") if pb.mode == "filter" else ("dictionary", "classifier", "codes")
        while not stop and n_iter < max_iter:
            n_iter += 1
            t = n_iter - 1
            state.radius = None if radius is None else radius / ((t + 1) ** radius_decay * math.log(t + 2))
            previous = factors
            W, C, beta, gamma, b = factors
            squares = 0.0
            for block in order:
                if block == "dictionary":
                    W, g = update_dictionary(pb, state, W, C, beta, gamma, b)
                elif block == "codes":
                    C, g = update_codes(pb, state, W, C, beta, gamma, b)
                else:
                    (beta, gamma, b), g = update_classifier(pb, state, W, C, beta, gamma, b)
                squares += g * g
            factors = self._balance(W, C, beta, gamma, b)
            parts = pb.objective(*factors)
            increase = -relative_decrease(self.values + [parts["objective"]], parts["logistic"] + parts["penalty"])
            if not math.isfinite(parts["objective"]) or (not state.adaptive and increase > max(1e-10, pb.rtol)):
                factors = previous  # undone: the sweep left the float range, or a fixed step was too long
                n_iter -= 1
                if state.adaptive:
                    warnings.warn("BCD stopped: a sweep left the float range. Check the data scaling.",
                                  ConvergenceWarning, stacklevel=3)
                    break
                state.rho = min(state.rho / 2.0, 1.0)  # 1 / L is always safe
                max_iter -= 1  # the undone sweep still counts against the budget
                continue
            stop = self._record(history, factors, math.sqrt(squares), n_iter, parts)
            decrease = relative_decrease(self.values, self.classifier_part)
            if abs(decrease) <= tol:
                converged = True
                break
        if not converged and not stop and max_iter > 0 and n_iter > 0:
            warnings.warn(
                f"BCD did not converge in {n_iter} iterations (tol={tol}); increase max_iter.",
                ConvergenceWarning,
                stacklevel=3,
            )
        return self._result(factors, n_iter, converged, history.data)

    def _record(self, history, factors, stationarity, n_iter, parts=None):
        """Append an iterate to the history (user's units); returns whether to stop."""
        parts = self.pb.objective(*factors) if parts is None else parts
        self.values.append(parts["objective"])
        self.classifier_part = parts["logistic"] + parts["penalty"]
        snapshot = lambda: {key: list(values) for key, values in history.data.items()}  # noqa: E731
        lazy = LazyFactors(lambda: self._result(factors, n_iter, False, snapshot()))
        return history.append(self.pb.in_user_units(parts), stationarity, lazy)

    def _initial_point(self, init):
        """Truncated SVD of X (absolute values when nonnegative); zero classifier."""
        pb, xp, state = self.pb, self.xp, self.state
        r, d = pb.n_components, pb.n_scores
        projector = make_projector(pb.X.T, r, "auto", xp, self.rng)
        basis = projector.project(pb.zeros(pb.n_features, 0), 0.0)
        state.data_curvature = pb.curvature * pb.max_weight * float(basis.s[0]) ** 2
        gamma = None if pb.X_aux is None else pb.zeros(pb.n_aux, d)
        if isinstance(init, str):  # 'random' (validated)
            W = self.rng.standard_normal((pb.n_features, r))
            W = pb.asarray(np.abs(W) if state.nonnegative else W)
            W = W / xp.sqrt(xp.sum(W * W, axis=0))[None, :]
            gamma = None if pb.X_aux is None else pb.asarray(self.rng.standard_normal((pb.n_aux, d)))
            beta, b = pb.asarray(self.rng.standard_normal((r, d))), pb.asarray(self.rng.standard_normal(d))
            return W, self._codes_of(W), beta, gamma, b
        if isinstance(init, SDLResult):
            return self._warm_start(init)
        if init is not None:  # an initial dictionary
            W = as_matrix(init, "init", xp)
            if tuple(W.shape) != (r, pb.n_features):
                raise ValueError(f"init as a dictionary must have shape (n_components, n_features) = "
                                 f"({r}, {pb.n_features}), got {tuple(W.shape)}.")
            _check_init(W, state.nonnegative, xp)
            W = pb.asarray(W).T
            norms = xp.sqrt(xp.sum(W * W, axis=0))
            W = W / xp.where(norms > 0, norms, xp.ones_like(norms))[None, :]
            return W, self._codes_of(W), pb.zeros(r, d), gamma, initial_intercept(pb)
        W = basis.U
        C = pb.X @ W
        if state.nonnegative:
            W, C = xp.abs(W), xp.abs(C)
        return W, keep(C), pb.zeros(r, d), gamma, initial_intercept(pb)

    def _codes_of(self, W):
        """Least-squares codes on ``W`` (nonnegative ones when asked)."""
        pb = self.pb
        return least_squares_block(pb, self.state, pb.X.zeros(W.shape[1]), W.T @ W, keep(pb.X @ W))[0]

    def _warm_start(self, init):
        """The factors of a previous BCD result, in this problem's units."""
        pb = self.pb
        s, gamma = warm_start(init, pb, "bcd", "W")
        r = pb.n_components
        if tuple(s["W"].shape) != (pb.n_features, r) or tuple(s["C"].shape) != (pb.n_samples, r):
            raise ValueError("init must be a BCD result on data of the same shape and n_components.")
        ratio = s["scales"].data / pb.scales.data  # codes scale as sigma, beta as 1 / sigma
        return s["W"], keep(s["C"] * ratio), s["beta"] / ratio, gamma, s["intercept"]

    def _balance(self, W, C, beta, gamma, b):
        """Unit-norm atoms; codes and coefficients absorb the scale (objective unchanged)."""
        xp = self.xp
        norms = xp.sqrt(xp.sum(W * W, axis=0))
        # a (near-)zero atom is unused (e.g. r above the rank of X): rescaling it would
        # blow its coefficient up without changing the objective, so it is left alone
        scale = xp.where(norms > 1e-8 * xp.max(norms), norms, xp.ones_like(norms))
        W, C = W / scale[None, :], keep(C * scale[None, :])
        beta = beta * scale[:, None] if self.pb.mode == "filter" else beta / scale[:, None]
        return W, C, beta, gamma, b

    def _result(self, factors, n_iter, converged, history):
        pb = self.pb
        W, C, beta, gamma, b = factors
        W, C, beta = sign_flip(W, (C, 1), (beta, 0))
        state = {"W": W, "C": C, "beta": beta, "gamma": gamma, "intercept": b, "scales": pb.scales}
        W, C, beta, gamma, b = pb.to_user(W, C, beta, gamma, b)
        return SDLResult(
            components=W.T, codes=C, coef=beta.T,
            aux_coef=pb.zeros(pb.n_scores, 0) if gamma is None else gamma.T, intercept=b,
            classes=pb.classes, history=history, n_iter=n_iter,
            converged=converged, solver="bcd", mode=pb.mode, state=state,
        )


def _check_init(W, nonnegative, xp):
    if not bool(xp.all(xp.isfinite(W))):
        raise ValueError("init contains NaN or infinity.")
    if nonnegative and bool(xp.any(W < 0)):
        raise ValueError("init has negative entries, but nonnegative=True needs a nonnegative dictionary.")
