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
"""

import math
import warnings

import numpy as np


from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_non_negative

from ._logistic import LogisticBlock
from ._objective import aux_scores, logistic_loss_grad, sdl_objective
from ._problem import (
    History,
    SDLResult,
    check_step_size,
    initial_intercept,
    prepare_problem,
    sign_flip,
    top_eigenvalue,
)
from ._projection import make_projector


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
        Ridge penalty of the classifier (see ``sdlearn._objective``).
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
        increases the objective is undone and ``rho`` halved.
    radius : float or None, default=None
        Constant of the diminishing search radius; ``None`` is plain BCD.
    radius_decay : float, default=0.5
        Exponent of the radius schedule (0.5 is the theory's ``c / (sqrt(t) log t)``).
    init : None, 'random' or SDLResult, default=None
        ``None`` starts from the truncated SVD of ``X`` (absolute values when nonnegative)
        and a zero classifier; 'random' from random atoms and coefficients (seeded by
        ``random_state``); an SDLResult of BCD on the same data warm-starts from it.
    random_state : int, RandomState instance or None, default=None
        Seeds the randomized SVD and the random initialisation.
    verbose : int, default=0
        Print progress every 10 iterations (1) or every iteration (2).

    Returns
    -------
    result : SDLResult
        Factors, history (objective, its parts, stationarity, time per iteration) and state.
    """
    problem = prepare_problem(
        X, y, X_aux=X_aux, sample_weight=sample_weight, mode=mode,
        n_components=n_components, xi=xi, alpha=alpha,
    )
    if nonnegative:
        check_non_negative(problem.X, "bcd with nonnegative=True (X)")
    check_step_size(step_size)
    if radius is not None and not radius > 0:
        raise ValueError(f"radius must be None or positive, got {radius!r}.")
    solver = _BCD(problem, nonnegative, block_max_iter, check_random_state(random_state), verbose)
    return solver.run(max_iter=max_iter, tol=tol, step_size=step_size, radius=radius,
                      radius_decay=radius_decay, init=init)


class _BCD:
    """State and block updates of one BCD run (internal)."""

    def __init__(self, problem, nonnegative, block_max_iter, rng, verbose):
        self.pb, self.xp = problem, problem.xp
        self.nonnegative = nonnegative
        self.block_max_iter = block_max_iter
        self.rng = rng
        self.history = History(verbose, name="bcd")
        self.rho = 1.0
        self.radius_t = None
        self.curvature = {}  # accepted curvature estimates of the adaptive blocks

    # -- helpers ------------------------------------------------------------------------------
    def _norm(self, a):
        return math.sqrt(float(self.xp.sum(a * a)))

    def _feasible(self, a):
        return self.xp.clip(a, 0.0, None) if self.nonnegative else a

    def _limit(self, new, old):
        """Shorten the move ``new - old`` to the current search radius."""
        if self.radius_t is None:
            return new
        step = self._norm(new - old)
        if step <= self.radius_t:
            return new
        return old + (self.radius_t / step) * (new - old)

    def _projected_gradient(self, x, gradient, L, constrained=True, value=None, key=None):
        """``block_max_iter`` projected-gradient steps; returns the point and the first
        gradient-mapping norm (the block's stationarity measure).

        ``L`` is a global curvature bound of the block. With ``value`` (and the automatic step)
        the steps adapt instead: each starts from half the curvature accepted last time for
        this block and doubles it until the descent-lemma bound holds, never beyond ``L``. The
        bound is loose where the logistic loss is flat (its curvature bound ``c_K ||X||^2``
        holds at the worst point only), and adaptive steps are what keep BCD from stalling.
        """
        xp = self.xp
        adaptive = value is not None and self.rho == 1.0
        current = value(x) if adaptive else None
        first = None
        for _ in range(self.block_max_iter):
            g = gradient(x)
            trial = min(0.5 * self.curvature.get(key, 2.0 * L), L) if adaptive else L / self.rho
            while True:
                candidate = x - g / trial
                if constrained:
                    candidate = self._feasible(candidate)
                move = candidate - x
                if not adaptive:
                    break
                candidate_value = value(candidate)
                bound = current + float(xp.sum(g * move)) + 0.5 * trial * float(xp.sum(move * move))
                if candidate_value <= bound + 1e-12 * abs(current) or trial >= L:
                    current = candidate_value
                    break
                trial = min(2.0 * trial, L)
            if adaptive:
                self.curvature[key] = trial
            if first is None:
                first = self._norm(move) * trial
            x = candidate
        return x, first

    def _ls_block(self, Z, BtB, cross):
        """Update ``Z`` in ``xi ||X' - B Z^T||^2`` given ``BtB = B^T B`` and ``cross = X'^T B``.

        Unconstrained: exact solve. Nonnegative: projected gradient with step 1 / (2 xi L).
        Returns the new block and its stationarity measure at the old point.
        """
        xp, xi = self.xp, self.pb.xi
        gradient = lambda V: 2.0 * xi * (V @ BtB - cross)  # noqa: E731
        if self.nonnegative:
            L = 2.0 * xi * max(top_eigenvalue(BtB, xp), 1e-12)
            return self._projected_gradient(Z, gradient, L)
        ridge = 1e-12 * max(float(xp.linalg.trace(BtB)), 1e-300)
        eye = xp.eye(BtB.shape[0], dtype=BtB.dtype, device=BtB.device)
        solution = xp.linalg.solve(BtB + ridge * eye, cross.T).T
        return solution, self._norm(gradient(Z))

    # -- the blocks ---------------------------------------------------------------------------
    def _scores(self, W, C, beta, gamma, b):
        pb = self.pb
        main = pb.dense(pb.X @ (W @ beta)) if pb.mode == "filter" else C @ beta
        return main + aux_scores(pb.X_aux, gamma, b)

    def dictionary_gradient(self, C, beta, gamma, b):
        """Gradient of the objective in ``W`` (filter mode) and its Lipschitz bound."""
        pb, xp = self.pb, self.xp
        XtC, CtC, bbT = pb.dense(pb.X.T @ C), C.T @ C, beta @ beta.T
        curvature = 2.0 * pb.xi * top_eigenvalue(CtC, xp) + (self.lam_X + pb.alpha) * top_eigenvalue(bbT, xp)

        def gradient(V):
            _, G = logistic_loss_grad(self._scores(V, C, beta, gamma, b), pb.Y, pb.w, xp)
            return 2.0 * pb.xi * (V @ CtC - XtC) + pb.dense(pb.X.T @ G) @ beta.T + pb.alpha * (V @ bbT)

        def value(V):
            loss, _ = logistic_loss_grad(self._scores(V, C, beta, gamma, b), pb.Y, pb.w, xp)
            recon = float(xp.sum((V.T @ V) * CtC)) - 2.0 * float(xp.sum(V * XtC))
            return loss + pb.xi * recon + 0.5 * pb.alpha * float(xp.sum((V @ beta) ** 2))

        return gradient, max(curvature, 1e-12), value

    def update_dictionary(self, W, C, beta, gamma, b):
        pb = self.pb
        if pb.mode == "feature":  # least squares in W
            return self._ls_block(W, C.T @ C, pb.dense(pb.X.T @ C))
        # filter: the classifier also reads W through the scores X W beta
        gradient, curvature, value = self.dictionary_gradient(C, beta, gamma, b)
        return self._projected_gradient(W, gradient, curvature, value=value, key="dictionary")

    def codes_gradient(self, W, beta, gamma, b):
        """Gradient of the objective in ``C`` (feature mode) and its Lipschitz bound."""
        pb, xp = self.pb, self.xp
        XW, WtW, bbT = pb.dense(pb.X @ W), W.T @ W, beta @ beta.T
        ridge = pb.alpha / pb.n_samples
        curvature = 2.0 * pb.xi * top_eigenvalue(WtW, xp) + (self.curv_w + ridge) * top_eigenvalue(bbT, xp)

        def gradient(V):
            _, G = logistic_loss_grad(V @ beta + aux_scores(pb.X_aux, gamma, b), pb.Y, pb.w, xp)
            return 2.0 * pb.xi * (V @ WtW - XW) + G @ beta.T + ridge * (V @ bbT)

        def value(V):
            loss, _ = logistic_loss_grad(V @ beta + aux_scores(pb.X_aux, gamma, b), pb.Y, pb.w, xp)
            recon = float(xp.sum((V.T @ V) * WtW)) - 2.0 * float(xp.sum(V * XW))
            return loss + pb.xi * recon + 0.5 * ridge * float(xp.sum((V @ beta) ** 2))

        return gradient, max(curvature, 1e-12), value

    def update_codes(self, W, C, beta, gamma, b):
        pb = self.pb
        if pb.mode == "filter":  # least squares in C
            return self._ls_block(C, W.T @ W, pb.dense(pb.X @ W))
        gradient, curvature, value = self.codes_gradient(W, beta, gamma, b)
        return self._projected_gradient(C, gradient, curvature, value=value, key="codes")

    def classifier_block(self, W, C, with_aux):
        """The classifier block ``theta = [beta; gamma; b]`` (stacked rows): a ridge logistic
        regression of the labels on ``[features, X_aux, 1]`` with penalty
        ``alpha/2 beta^T Q beta + alpha/2 ||gamma||^2`` (``Q = W^T W`` or ``C^T C / n``)."""
        pb, xp = self.pb, self.xp
        F = pb.dense(pb.X @ W) if pb.mode == "filter" else C
        Q = W.T @ W if pb.mode == "filter" else (C.T @ C) / pb.n_samples
        ones = xp.ones((pb.n_samples, 1), dtype=pb.dtype, device=pb.Y.device)
        design = xp.concat([F, pb.X_aux, ones] if with_aux else [F, ones], axis=1)
        return LogisticBlock(design, Q, F.shape[1], pb.n_aux, pb, xp)

    def classifier_gradient(self, W, C, with_aux):
        """Gradient function of the classifier block and its Lipschitz bound."""
        block = self.classifier_block(W, C, with_aux)
        return (lambda V: block.evaluate(V)[1]), block.lipschitz()

    def update_classifier(self, W, C, beta, gamma, b):
        """Newton-CG steps on the classifier block (small and smooth: gradient steps crawl
        there, and that block is what limits BCD's progress per sweep)."""
        xp = self.xp
        with_aux = gamma is not None
        theta = xp.concat([beta, gamma, b[None, :]] if with_aux else [beta, b[None, :]], axis=0)
        block = self.classifier_block(W, C, with_aux)
        return block.newton(theta, self.block_max_iter)

    def split_classifier(self, theta, with_aux):
        """``theta = [beta; gamma; b]`` back into its parts."""
        r = self.pb.n_components
        return theta[:r, :], (theta[r:-1, :] if with_aux else None), theta[-1, :]

    # -- the run ------------------------------------------------------------------------------
    def run(self, *, max_iter, tol, step_size, radius, radius_decay, init):
        pb, xp = self.pb, self.xp
        W, C, beta, gamma, b = self._initial_point(init)
        self.rho = 1.0 if step_size == "auto" else float(step_size)
        self._record(W, C, beta, gamma, b, float("nan"))
        order = ("dictionary", "codes", "classifier") if pb.mode == "filter" else ("dictionary", "classifier", "codes")
        converged, n_iter = False, 0
        for n_iter in range(1, max_iter + 1):
            t = n_iter - 1
            self.radius_t = None if radius is None else radius / ((t + 1) ** radius_decay * math.log(t + 2))
            previous = (W, C, beta, gamma, b)
            squares = 0.0
            for block in order:
                if block == "dictionary":
                    new, g = self.update_dictionary(W, C, beta, gamma, b)
                    W = self._limit(new, W)
                elif block == "codes":
                    new, g = self.update_codes(W, C, beta, gamma, b)
                    C = self._limit(new, C)
                else:
                    new, g = self.update_classifier(W, C, beta, gamma, b)
                    with_aux = gamma is not None
                    old = xp.concat([beta, gamma, b[None, :]] if with_aux else [beta, b[None, :]], axis=0)
                    beta, gamma, b = self.split_classifier(self._limit(new, old), with_aux)
                squares += g * g
            W, C, beta = self._balance(W, C, beta)
            self._record(W, C, beta, gamma, b, math.sqrt(squares))
            if self.history.relative_decrease() < -1e-10 and step_size != "auto":
                # a fixed step that was too long: undo the sweep and halve the step
                W, C, beta, gamma, b = previous
                self._drop_last()
                self.rho /= 2.0
                continue
            if abs(self.history.relative_decrease()) <= tol:
                converged = True
                break
        if not converged and max_iter > 0:
            warnings.warn(
                f"BCD did not converge in {max_iter} iterations (tol={tol}); increase max_iter.",
                ConvergenceWarning,
                stacklevel=3,
            )
        W, C, beta = sign_flip(W, (C, 1), (beta, 0))
        state = {"W": W, "C": C, "beta": beta, "gamma": gamma, "intercept": b}
        d = pb.n_scores
        return SDLResult(
            components=W.T, codes=C, coef=beta.T,
            aux_coef=pb.zeros(d, 0) if gamma is None else gamma.T, intercept=b,
            classes=pb.classes, history=self.history.data, n_iter=n_iter,
            converged=converged, solver="bcd", mode=pb.mode, state=state,
        )

    def _initial_point(self, init):
        """Truncated SVD of X (absolute values when nonnegative); zero classifier."""
        pb, xp = self.pb, self.xp
        r, d = pb.n_components, pb.n_scores
        projector = make_projector(pb.X.T, r, "auto", xp, self.rng)
        basis = projector.project(pb.zeros(pb.n_features, 0), 0.0)
        self.lam_X = pb.curvature * float(xp.max(pb.w)) * float(basis.s[0]) ** 2
        self.curv_w = pb.curvature * float(xp.max(pb.w))
        if isinstance(init, str):
            if init != "random":
                raise ValueError(f"init must be None, 'random' or an SDLResult, got {init!r}.")
            W = self.rng.standard_normal((pb.n_features, r))
            W = pb.asarray(np.abs(W) if self.nonnegative else W)
            W = W / xp.sqrt(xp.sum(W * W, axis=0))[None, :]
            C, _ = self._ls_block(pb.zeros(pb.n_samples, r), W.T @ W, pb.dense(pb.X @ W))
            gamma = None if pb.X_aux is None else pb.asarray(self.rng.standard_normal((pb.n_aux, d)))
            return W, C, pb.asarray(self.rng.standard_normal((r, d))), gamma, pb.asarray(self.rng.standard_normal(d))
        if init is not None:
            s = init.state
            if "W" not in s or tuple(s["W"].shape) != (pb.n_features, r) or tuple(s["C"].shape) != (pb.n_samples, r):
                raise ValueError("init must be a BCD result on data of the same shape and n_components.")
            return s["W"], s["C"], s["beta"], s["gamma"], s["intercept"]
        W = basis.U
        C = pb.dense(pb.X @ W)
        if self.nonnegative:
            W, C = xp.abs(W), xp.abs(C)
        gamma = None if pb.X_aux is None else pb.zeros(pb.n_aux, d)
        return W, C, pb.zeros(r, d), gamma, initial_intercept(pb)

    def _balance(self, W, C, beta):
        """Unit-norm atoms; codes and coefficients absorb the scale (objective unchanged)."""
        xp = self.xp
        norms = xp.sqrt(xp.sum(W * W, axis=0))
        # a (near-)zero atom is unused (e.g. r above the rank of X): rescaling it would
        # blow its coefficient up without changing the objective, so it is left alone
        scale = xp.where(norms > 1e-8 * xp.max(norms), norms, xp.ones_like(norms))
        W, C = W / scale[None, :], C * scale[None, :]
        beta = beta * scale[:, None] if self.pb.mode == "filter" else beta / scale[:, None]
        return W, C, beta

    def _record(self, W, C, beta, gamma, b, stationarity):
        pb = self.pb
        parts = sdl_objective(
            pb.X, pb.Y, pb.w, pb.X_aux, W, C, beta, gamma, b, xi=pb.xi, alpha=pb.alpha,
            mode=pb.mode, xp=self.xp, sq_norm_X=pb.sq_norm_X,
        )
        self.history.append(parts, stationarity)

    def _drop_last(self):
        for values in self.history.data.values():
            values.pop()

