"""LPGD: low-rank projected gradient descent on the lifted convex formulation of SDL.

The lifted matrix stacks the reconstruction block ``Theta1`` and the classifier block
``Theta2`` side by side, ``M = [Theta1, Theta2]`` of rank at most ``r``:

* filter mode: ``Theta1 = W C^T ~ X^T`` (p x n), ``Theta2 = W beta`` (p x (K-1));
* feature mode: ``Theta1 = C W^T ~ X`` (n x p), ``Theta2 = C beta`` (n x (K-1)).

The objective is convex in ``(Theta, gamma, b)``; the only nonconvexity is the rank.

Conditioning (section 15 of the SDL brief). The reconstruction block has curvature ``2 xi`` and
the classifier block up to ``L1 = c_K ||X||_2^2`` (filter), orders of magnitude apart, so one
global step ``1/L`` crawls. Since ``rank([Theta1, Theta2]) = rank([Theta1, c Theta2])``, we run
projected gradient on ``(Theta1, c Theta2)`` with ``c^2 = L1 / (2 xi)``: both blocks then have
curvature ``2 xi`` and one step ``1/(2 xi)`` serves both. That step sends the reconstruction block
exactly to ``X`` (``Theta1 - (Theta1 - X) = X``), so an iteration is

1. a gradient step on the classifier block (``Theta2``, ``gamma``, ``b``) with step ``1/L1``;
2. the rank-r projection of ``[A, c Theta2]`` (``A = X^T`` or ``X``): the data with ``K - 1``
   columns appended, whose top-r left singular subspace ``U`` gives ``Theta1 = U U^T A`` and
   ``Theta2 = U U^T Theta2``.

Only ``Theta2``, ``gamma``, ``b`` and ``U`` are carried; the dense ``Theta1`` is never formed
(``||X - Theta1||^2 = ||A||^2 - ||U^T A||^2``). Steps are safeguarded: every accepted iterate
satisfies the descent-lemma bound of the classifier block, so the objective is monotone, and with
``step_size='auto'`` the curvature estimates adapt (backtrack on failure, grow after success).
Every search is bounded (40 backtracks per step, ``max_iter`` steps).

Everything here runs on the rescaled problem of :mod:`sdlearn._problem` (the data of order one,
the classifier in coordinates where its ridge is Euclidean); the factors are mapped back to the
user's units at the end. ``X`` is read only through its :class:`~sdlearn._data.DataMatrix`.
"""

import math
import warnings
from typing import Any, NamedTuple

from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import validate_params

from ._history import History, LazyFactors, relative_decrease
from ._logistic import LogisticBlock
from ._objective import ClassifierValue, aux_scores, classifier_gradient, classifier_value
from ._params import COMMON, DATA, INIT_LPGD, LPGD
from ._problem import SDLResult, aux_design_curvature, initial_intercept, prepare_problem, sign_flip, warm_start
from ._projection import Basis, auto_projection, change_energy, make_projector, residual_energy

_MAX_BACKTRACKS = 40
_GROWTH = 1.25  # least step growth after an accepted step (adaptive mode)
_MAX_GROWTH = 4.0  # most step growth after an accepted step that used little of its model
_MIN_CURVATURE = 1e-12  # floor of the curvature bounds (the rescaled data is of order one)


@validate_params(
    {**DATA, **COMMON, **LPGD, "init": INIT_LPGD},
    prefer_skip_nested_validation=True,
)
def lpgd(
    X,
    y,
    *,
    n_components,
    mode="filter",
    X_aux=None,
    sample_weight=None,
    xi=1.0,
    alpha=1.0,
    max_iter=100,
    tol=1e-6,
    step_size="auto",
    projection="auto",
    init=None,
    acceleration=True,
    classifier_steps=2,
    random_state=None,
    verbose=0,
    callback=None,
):
    """Fit SDL by low-rank projected gradient descent on the lifted convex formulation.

    Minimises ``sum_i w_i l(y_i, s_i) + xi ||X - C W^T||_F^2 + penalty`` (see
    :class:`sdlearn.SDLClassifier` for the model) over the lifted matrix of rank at most
    ``n_components``, and recovers the factors from it.

    Parameters
    ----------
    X : array-like or sparse matrix of shape (n_samples, n_features)
        Features to reconstruct and classify from.
    y : array-like of shape (n_samples,)
        Class labels; the smallest label is the baseline class.
    n_components : int
        Rank ``r`` of the dictionary, at most ``min(n_samples, n_features)``.
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
    max_iter : int, default=100
        Maximum number of iterations.
    tol : float, default=1e-6
        Stop when the decrease of the objective over one iteration falls below ``tol``
        times its classifier part (logistic loss + penalty): the reconstruction term can be
        far larger and nearly constant, so it is not the scale that measures progress.
    step_size : 'auto' or float, default='auto'
        'auto' adapts the classifier step from ``1/L`` (curvature bound; backtracking keeps
        every step safe). A float ``rho`` fixes the classifier steps to ``rho / L``; a step
        that breaks the descent bound is still halved. The reconstruction block always takes
        ``1 / (2 xi)``.
    projection : {'auto', 'gram', 'subspace'}, default='auto'
        Rank-r projection: exact through the Gram matrix of the smaller side of ``X``, or a
        warm-started block eigensolver on products with ``X`` (large or sparse ``X``); 'auto'
        takes the exact one when ``min(n_samples, n_features) <= 4 (n_components + 10)``.
    init : None, 'random' or SDLResult, default=None
        ``None`` starts from a zero classifier (the first iterate is the truncated SVD of
        ``X``); 'random' from a random classifier block (seeded by ``random_state``); an
        SDLResult of LPGD on the same data warm-starts from it.
    acceleration : bool, default=True
        Extrapolate the classifier block (FISTA momentum) and restart the momentum whenever
        the objective would increase, so the objective stays monotone. ``False`` runs plain
        projected gradient descent, the algorithm of the convergence theory.
    classifier_steps : int, default=2
        Newton-CG steps on the classifier restricted to the current rank-r subspace after
        every projection (the iterate stays feasible and the objective can only fall). Gradient
        steps alone crawl when the logistic part is ill conditioned (small ``xi``, more
        features than samples: 10x fewer iterations there); ``0`` runs plain LPGD.
    random_state : int, RandomState instance or None, default=None
        Seeds the subspace iteration and the random initialisation.
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
    solver = _LPGD(problem, projection, check_random_state(random_state), int(classifier_steps))
    history = History("lpgd", max_iter, verbose, callback)
    try:
        return solver.run(history, max_iter=max_iter, tol=tol, step_size=step_size, init=init,
                          acceleration=acceleration)
    finally:
        history.close()


class Step(NamedTuple):
    """One accepted projected-gradient step of LPGD.

    ``point`` is ``(T, gamma, b)``, ``classifier`` its :class:`~sdlearn._objective.ClassifierValue`,
    ``basis`` the projection's basis, ``reconstruction`` the weighted reconstruction term,
    ``objective`` the total, ``stationarity`` the gradient-mapping norm, ``backtracks`` the
    number of doublings of the curvature estimates, ``used`` the real curvature along the step
    over the model's, and ``block``, ``column_scale`` what was projected (``[A, c block]``).
    """

    point: tuple
    classifier: ClassifierValue
    basis: Basis
    reconstruction: float
    objective: float
    stationarity: float
    backtracks: int
    used: float
    block: Any
    column_scale: float


class _LPGD:
    """State and steps of one LPGD run (internal)."""

    def __init__(self, problem, projection, rng, refit_steps=0):
        self.pb = problem
        self.xp = problem.xp
        self.A = problem.X.T if problem.mode == "filter" else problem.X
        self.projection = auto_projection(self.A.shape, problem.n_components) if projection == "auto" else projection
        self.projector = make_projector(self.A, problem.n_components, self.projection, self.xp, rng)
        self.rng = rng
        self.refit_steps = refit_steps  # Newton-CG steps of the classifier refit per iteration
        self.values = []  # the rescaled objective per iterate (the stopping rule reads it)

    # -- the classifier part of the objective (shared functions, rescaled problem) --------------
    def classifier(self, point, S=None):
        pb = self.pb
        return classifier_value(pb.X, pb.Y, pb.w, pb.X_aux, point, ridge=pb.ridge, mode=pb.mode, xp=self.xp,
                                score_map=pb.score_map, S=S)

    def gradients(self, point, G):
        pb = self.pb
        return classifier_gradient(pb.X, pb.X_aux, point, G, ridge=pb.ridge, mode=pb.mode, xp=self.xp)

    # -- the run ------------------------------------------------------------------------------
    def run(self, history, *, max_iter, tol, step_size, init, acceleration):
        pb, xp = self.pb, self.xp
        m, d = self.A.shape[0], pb.n_scores
        T, gamma, b, scale = self._initial_point(init, m, d)
        basis = self.projector.project(T, 1.0)
        x = (basis.U @ (basis.U.T @ T), gamma, b)
        projected = (T, 1.0)

        # curvature bounds of the classifier blocks; the top singular value of [A, c T] bounds
        # that of A, and the Hessian of the weighted loss is at most c_K max(w) X^T X
        curv_w = pb.curvature * float(xp.max(pb.w))
        main = curv_w * float(basis.s[0]) ** 2 if pb.mode == "filter" else curv_w
        L1_bound = max(main + pb.ridge.main, _MIN_CURVATURE)
        L2_bound = max(aux_design_curvature(pb) + pb.ridge_aux_max, _MIN_CURVATURE)
        if step_size == "auto":
            self.L = [scale * L1_bound, scale * L2_bound]
        else:
            self.L = [L1_bound / step_size, L2_bound / step_size]

        cls = self.classifier(x)
        recon = pb.xi * residual_energy(self.projector, basis, pb.sq_norm_X)
        n_iter, converged = 0, False
        stop = self._record(history, cls, recon, float("nan"), basis, x, projected, n_iter, L1_bound)

        # FISTA-style extrapolation of the classifier state with a function-value restart:
        # the reconstruction block needs none (its step lands on X from anywhere)
        x_prev, S_prev, momentum_t = x, cls.scores, 1.0
        while not stop and n_iter < max_iter:
            n_iter += 1
            F_x = self.values[-1]
            t_next = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * momentum_t * momentum_t))
            coef = (momentum_t - 1.0) / t_next if acceleration else 0.0
            step = None
            if coef > 0:
                y = _combine(x, x_prev, coef)
                step = self._step(y, self.classifier(y, cls.scores + coef * (cls.scores - S_prev)), basis)
                if step is not None and not step.objective <= F_x + pb.rtol * abs(F_x):
                    step = None  # the extrapolated step went uphill: restart from x
                    t_next = 1.0
            if step is None:
                step = self._step(x, cls, basis)
            if step is None:
                # no step decreases the model: either the precision floor (converged) or trouble
                n_iter -= 1
                converged = self._decrease() <= max(tol, 1e-10, pb.rtol)
                if not converged:
                    warnings.warn(
                        "LPGD could not find a step that decreases the objective; stopping early. "
                        "Check the data scaling or lower step_size.",
                        ConvergenceWarning,
                        stacklevel=3,
                    )
                break
            x_new, cls_new, basis_new = step.point, step.classifier, step.basis
            if self.refit_steps:
                x_new, cls_new = self._refit_classifier(x_new, basis_new)
            x_prev, S_prev, x, cls, basis = x, cls.scores, x_new, cls_new, basis_new
            projected = (step.block, step.column_scale)
            momentum_t = t_next
            stop = self._record(history, cls, step.reconstruction, step.stationarity, basis, x, projected, n_iter,
                                L1_bound)
            if step_size == "auto" and step.backtracks == 0:
                # the model's curvature overestimated the real one by 1/used: grow the steps by
                # up to that factor, keeping a margin of two (at least 1.25x, at most 4x)
                growth = min(max(0.5 / max(step.used, 1e-300), _GROWTH), _MAX_GROWTH)
                self.L = [max(self.L[0] / growth, 1e-6 * L1_bound), max(self.L[1] / growth, 1e-6 * L2_bound)]
            if self._decrease() <= tol:
                converged = True
                break
        if not converged and not stop and max_iter > 0:
            warnings.warn(
                f"LPGD did not converge in {max_iter} iterations (tol={tol}); increase max_iter.",
                ConvergenceWarning,
                stacklevel=3,
            )
        return self._result(basis, x, projected, n_iter, converged, history.data, L1_bound)

    def _decrease(self):
        return relative_decrease(self.values, self.classifier_part)

    def _record(self, history, cls, recon, stationarity, basis, point, projected, n_iter, L1_bound):
        """Append an iterate to the history (user's units); returns whether to stop."""
        parts = {"logistic": cls.loss, "penalty": cls.penalty, "reconstruction": recon}
        parts["objective"] = cls.loss + cls.penalty + recon
        self.values.append(parts["objective"])
        self.classifier_part = cls.loss + cls.penalty
        snapshot = lambda: {key: list(values) for key, values in history.data.items()}  # noqa: E731
        factors = LazyFactors(lambda: self._result(basis, point, projected, n_iter, False, snapshot(), L1_bound))
        return history.append(self.pb.in_user_units(parts), stationarity, factors)

    def _refit_classifier(self, point, basis):
        """Newton-CG on the classifier restricted to the current subspace ``span(U)``.

        With ``U`` fixed the objective is convex in ``(U^T T, gamma, b)`` and the iterate stays
        feasible (both blocks live in ``span(U)``), so these steps only lower the objective.
        """
        pb, xp = self.pb, self.xp
        T, gamma, b = point
        U = basis.U
        r = U.shape[1]
        if pb.mode == "filter":  # X U, which the projector often computed already (E = A^T U)
            features = basis.E if basis.E is not None else pb.X @ U
        else:
            features = U
        eye = xp.eye(r, dtype=pb.dtype, device=pb.device)  # the ridge on T = U beta is ||beta||^2
        ones = xp.ones((pb.n_samples, 1), dtype=pb.dtype, device=pb.device)
        design = xp.concat([features, ones] if gamma is None else [features, pb.X_aux, ones], axis=1)
        block = LogisticBlock(design, eye, r, pb.n_aux, pb)
        start = xp.concat([U.T @ T, b[None, :]] if gamma is None else [U.T @ T, gamma, b[None, :]], axis=0)
        V, _ = block.newton(start, self.refit_steps)
        point = (U @ V[:r, :], None if gamma is None else V[r:-1, :], V[-1, :])
        return point, self.classifier(point, design @ V)

    def _step(self, y, cls_y, basis):
        """One safeguarded projected-gradient step from the classifier point ``y``.

        Backtracks (doubling the curvature estimates) until the classifier part satisfies the
        descent-lemma bound at ``y``. Returns a :class:`Step`, or ``None`` if no step works.
        """
        pb, xp = self.pb, self.xp
        gradient = self.gradients(y, cls_y.G)
        for backtracks in range(_MAX_BACKTRACKS):
            L1, L2 = self.L
            half = _combine(y, gradient, -1.0, 1.0 / L1, 1.0 / L2)
            # the subspace projector starts from the current basis and keeps it in its search
            # space, so (like the exact one) it never projects worse than the current subspace
            c = math.sqrt(L1 / (2.0 * pb.xi))
            new_basis = self.projector.project(half[0], c, warm=basis)
            coefficients = new_basis.U.T @ half[0]
            point = (new_basis.U @ coefficients, half[1], half[2])
            S = None
            if pb.mode == "filter" and new_basis.E is not None:
                # X T = (X U)(U^T T) with X U = E from the projector: no pass over X
                S = new_basis.E @ coefficients + aux_scores(pb.X_aux, half[1], half[2])
            cls_new = self.classifier(point, S)
            recon = pb.xi * residual_energy(self.projector, new_basis, pb.sq_norm_X)
            move = _combine(point, y, -1.0)
            sq = [_sq(move[0], xp), _sq(move[1], xp) + _sq(move[2], xp)]
            linear = sum(_inner(g, v, xp) for g, v in zip(gradient, move))
            model = cls_y.value + linear + 0.5 * L1 * sq[0] + 0.5 * L2 * sq[1]
            if cls_new.value <= model + pb.rtol * abs(cls_y.value):
                recon_move = 2.0 * pb.xi * math.sqrt(change_energy(self.projector, new_basis, basis))
                stationarity = math.sqrt(recon_move * recon_move + L1 * L1 * sq[0] + L2 * L2 * sq[1])
                # fraction of the model's quadratic term that the step really met
                quadratic = 0.5 * (L1 * sq[0] + L2 * sq[1])
                used = (cls_new.value - cls_y.value - linear) / quadratic if quadratic > 0 else 1.0
                return Step(point, cls_new, new_basis, recon, cls_new.value + recon, stationarity, backtracks, used,
                            half[0], c)
            self.L = [2.0 * L1, 2.0 * L2]
        return None

    def _initial_point(self, init, m, d):
        pb = self.pb
        if isinstance(init, str):  # 'random' (validated)
            # scores of order one: the filter T reads rows of X, whose mean norm sets the scale
            scale = 1.0
            if pb.mode == "filter":
                scale = 1.0 / max(math.sqrt(pb.sq_norm_X / pb.n_samples), 1e-12)
            T = pb.asarray(scale * self.rng.standard_normal((m, d)))
            gamma = None if pb.X_aux is None else pb.asarray(self.rng.standard_normal((pb.n_aux, d)))
            return T, gamma, pb.asarray(self.rng.standard_normal(d)), 1.0
        if init is not None:
            return self._warm_start(init, m, d)
        gamma = None if pb.X_aux is None else pb.zeros(pb.n_aux, d)
        return pb.zeros(m, d), gamma, initial_intercept(pb), 1.0

    def _warm_start(self, init, m, d):
        """The state of a previous LPGD result, in this problem's units."""
        pb = self.pb
        state, gamma = warm_start(init, pb, "lpgd", "theta2")
        if tuple(state["theta2"].shape) != (m, d):
            raise ValueError("init must be an LPGD result on data of the same shape.")
        T = state["theta2"]
        if pb.mode == "filter":  # T = W beta scales as 1 / sigma
            T = T * (pb.scales.data / state["scales"].data)
        return T, gamma, state["intercept"], state.get("scale", 1.0)

    def _result(self, basis, point, projected, n_iter, converged, history, L1_bound):
        """Factors from the lifted iterate ``U [U^T A, U^T T]`` (orthonormal dictionary)."""
        pb, xp = self.pb, self.xp
        T, gamma, b = point
        U = basis.U
        E = basis.E if basis.E is not None else self.A.T @ U  # A^T U, (k, r)
        if pb.mode == "filter":
            # Theta1 = U (X U)^T, Theta2 = U (U^T T): W = U, codes X U, beta = U^T T
            W, C, beta = U, E, U.T @ T
        else:
            # Theta1 = U E^T with E = X^T U = W_e S R^T: W = W_e, codes U R S, beta from T = C beta
            W, S, Rt = xp.linalg.svd(E, full_matrices=False)
            keep = S > S[0] * 1e-12
            inv_S = xp.where(keep, 1.0 / xp.where(keep, S, 1.0), 0.0)
            C = (U @ Rt.T) * S[None, :]
            beta = (inv_S[:, None] * Rt) @ (U.T @ T)
        W, C, beta = sign_flip(W, (C, 1), (beta, 0))
        W, C, beta, aux_coef, intercept = pb.to_user(W, C, beta, gamma, b)
        block, c = projected
        state = {
            "theta2": T, "gamma": gamma, "intercept": b, "scale": self.L[0] / L1_bound if hasattr(self, "L") else 1.0,
            "scales": pb.scales, "projection": self.projection, "basis": U, "projected_block": c * block,
        }
        return SDLResult(
            components=W.T, codes=C, coef=beta.T,
            aux_coef=pb.zeros(pb.n_scores, 0) if aux_coef is None else aux_coef.T, intercept=intercept,
            classes=pb.classes, history=history, n_iter=n_iter, converged=converged, solver="lpgd",
            mode=pb.mode, state=state,
        )


def _combine(p, q, coef, scale_T=1.0, scale_rest=1.0):
    """``p + coef * (p - q)`` for ``coef > 0`` is extrapolation; with ``coef = -1`` and scales,
    ``p - scale * q`` (a gradient step) or ``p - q`` (a move). ``None`` parts stay ``None``."""
    out = []
    for i, (a, b) in enumerate(zip(p, q)):
        if a is None:
            out.append(None)
        elif coef < 0:
            out.append(a - (scale_T if i == 0 else scale_rest) * b)
        else:
            out.append(a + coef * (a - b))
    return tuple(out)


def _sq(a, xp):
    return 0.0 if a is None else float(xp.sum(a * a))


def _inner(a, b, xp):
    return 0.0 if a is None else float(xp.sum(a * b))
