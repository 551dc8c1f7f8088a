"""Behaviour of the LPGD and BCD solver functions: descent, convergence, recovery, warm starts."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import subspace_angles
from sklearn.exceptions import ConvergenceWarning

from sdlearn import bcd, lpgd
from sdlearn._backend import get_namespace
from sdlearn._objective import sdl_objective
from sdlearn.datasets import make_sdl_classification

xp = get_namespace(np.zeros(1))


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, **kwargs)


def objective_of(result, X, y, X_aux, xi, alpha, mode, sample_weight=None):
    """The shared objective function at a result's factors, in the user's units."""
    Y = (np.asarray(y)[:, None] == result.classes[None, 1:]).astype(float)
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    gamma = result.aux_coef.T if X_aux is not None else None
    return sdl_objective(X, Y, w, X_aux, result.components.T, result.codes, result.coef.T,
                         gamma, result.intercept, xi=xi, alpha=alpha, mode=mode, xp=xp)["objective"]


instances = st.tuples(
    st.integers(20, 60), st.integers(5, 15), st.integers(1, 3), st.integers(2, 4), st.integers(0, 2),
    st.sampled_from(["filter", "feature"]), st.floats(0.05, 5.0), st.integers(0, 2**16),
)


@settings(max_examples=20, deadline=None)
@given(instances, st.sampled_from(["gram", "subspace"]), st.booleans())
def test_lpgd_objective_decreases_monotonically(instance, projection, acceleration):
    n, p, r, k, q, mode, xi, seed = instance
    d = make_sdl_classification(n, p, r, n_classes=k, n_aux=q, mode=mode, random_state=seed)
    res = quiet(lpgd, d.data, d.target, n_components=r, mode=mode, X_aux=d.aux, xi=xi, max_iter=30, tol=0,
                projection=projection, acceleration=acceleration, random_state=0)
    f = np.array(res.history["objective"])
    assert np.all(np.diff(f) <= 1e-10 * np.abs(f[1:]) + 1e-12)
    # the history's value is the objective of the recovered factors
    assert objective_of(res, d.data, d.target, d.aux, xi, 1.0, mode) == pytest.approx(f[-1], rel=1e-8)


@settings(max_examples=15, deadline=None)
@given(instances, st.booleans(), st.booleans())
def test_bcd_objective_is_non_increasing(instance, use_radius, nonnegative):
    n, p, r, k, q, mode, xi, seed = instance
    d = make_sdl_classification(n, p, r, n_classes=k, n_aux=q, mode=mode, nonnegative=nonnegative, random_state=seed)
    res = quiet(bcd, d.data, d.target, n_components=r, mode=mode, X_aux=d.aux, xi=xi, max_iter=15, tol=0,
                nonnegative=nonnegative, radius=1.0 if use_radius else None)
    f = np.array(res.history["objective"])
    assert np.all(np.diff(f) <= 1e-10 * np.abs(f[1:]) + 1e-12)
    assert objective_of(res, d.data, d.target, d.aux, xi, 1.0, mode) == pytest.approx(f[-1], rel=1e-8)
    if nonnegative:
        assert res.components.min() >= 0 and res.codes.min() >= 0


@pytest.mark.parametrize("mode", ["filter", "feature"])
def test_lpgd_converges_linearly_on_a_planted_instance(mode):
    d = make_sdl_classification(1000, 60, 3, n_aux=1, mode=mode, random_state=0)
    kw = dict(n_components=3, mode=mode, X_aux=d.aux, xi=d.xi)
    ref = lpgd(d.data, d.target, max_iter=500, tol=1e-15, **kw)
    # the plain algorithm of the theory: projected gradient, no momentum, no Newton refit
    plain = quiet(lpgd, d.data, d.target, max_iter=12, tol=0, acceleration=False, classifier_steps=0, **kw)
    best = min(ref.objective, min(plain.history["objective"]))
    gap = np.array(plain.history["objective"]) - best + 1e-12 * abs(best)
    # the log-gap falls at least along a line of slope log(0.6) per iteration, without stalling
    slope = np.polyfit(np.arange(13), np.log(gap[:13]), 1)[0]
    assert np.exp(slope) < 0.6
    assert np.all(gap[1:13] < gap[0] * 0.6 ** np.arange(1, 13))
    # the default (momentum + Newton refit of the classifier) gets to 1e-9 in fewer iterations
    def iterations_to(result, rel=1e-9):
        gaps = np.array(result.history["objective"]) - best
        return int(np.argmax(gaps <= rel * abs(best)))

    long_plain = quiet(lpgd, d.data, d.target, max_iter=200, tol=0, acceleration=False, classifier_steps=0, **kw)
    fast = quiet(lpgd, d.data, d.target, max_iter=200, tol=0, **kw)
    assert 0 < iterations_to(fast) < iterations_to(long_plain)


def test_lpgd_reaches_the_same_optimum_as_bcd_and_from_warm_start():
    d = make_sdl_classification(500, 40, 3, n_aux=2, random_state=1)
    kw = dict(n_components=3, X_aux=d.aux, xi=d.xi)
    res = lpgd(d.data, d.target, tol=1e-12, max_iter=300, **kw)
    res_b = quiet(bcd, d.data, d.target, tol=0, max_iter=300, **kw)
    # BCD is local and slower, but reaches the global minimum found by LPGD within 0.01 %
    assert res_b.objective >= res.objective - 1e-7 * abs(res.objective)
    assert res_b.objective <= res.objective * (1 + 1e-4)
    warm = lpgd(d.data, d.target, tol=1e-12, max_iter=300, init=res, **kw)
    assert warm.n_iter <= 5
    assert warm.objective == pytest.approx(res.objective, rel=1e-10)


@pytest.mark.parametrize("n_classes", [3, 4])
@pytest.mark.parametrize("solver", [lpgd, bcd])
def test_multiclass_shapes_and_probabilities(n_classes, solver):
    d = make_sdl_classification(300, 20, 3, n_classes=n_classes, n_aux=1, random_state=2)
    res = quiet(solver, d.data, d.target, n_components=3, X_aux=d.aux, xi=d.xi, max_iter=50)
    assert res.components.shape == (3, 20)
    assert res.coef.shape == (n_classes - 1, 3)
    assert res.aux_coef.shape == (n_classes - 1, 1)
    assert res.intercept.shape == (n_classes - 1,)
    assert list(res.classes) == list(range(n_classes))


@pytest.mark.parametrize("mode", ["filter", "feature"])
def test_planted_dictionary_is_recovered_and_accuracy_approaches_bayes(mode):
    d = make_sdl_classification(3000, 50, 4, n_aux=2, mode=mode, class_sep=2.0, random_state=3)
    train, test = slice(0, 2000), slice(2000, None)
    res = lpgd(d.data[train], d.target[train], n_components=4, mode=mode, X_aux=d.aux[train], xi=d.xi, tol=1e-10)
    angles = subspace_angles(res.components.T, d.dictionary.T)
    assert np.max(angles) < 0.05
    scores = d.data[test] @ res.components.T @ res.coef.T if mode == "filter" else None
    if mode == "feature":
        codes = np.linalg.lstsq(res.components.T, d.data[test].T, rcond=None)[0].T
        scores = codes @ res.coef.T
    scores = scores + d.aux[test] @ res.aux_coef.T + res.intercept
    accuracy = np.mean((scores[:, 0] > 0).astype(int) == d.target[test])
    bayes = np.mean(d.proba[test].argmax(axis=1) == d.target[test])
    assert accuracy >= bayes - 0.03


def test_filter_mode_recovers_the_effective_classifier():
    d = make_sdl_classification(4000, 30, 3, mode="filter", class_sep=2.0, noise=0.5, random_state=4)
    res = lpgd(d.data, d.target, n_components=3, xi=d.xi, alpha=1e-3, tol=1e-10)
    learned = (res.components.T @ res.coef.T).ravel()
    truth = d.filter.ravel()
    cosine = learned @ truth / (np.linalg.norm(learned) * np.linalg.norm(truth))
    assert cosine > 0.95


def test_sparse_input_gives_the_dense_result():
    d = make_sdl_classification(200, 40, 3, nonnegative=True, random_state=5)
    X = d.data * (np.random.default_rng(0).random(d.data.shape) < 0.3)
    for projection in ("gram", "subspace"):
        dense = lpgd(X, d.target, n_components=3, projection=projection, random_state=0, tol=1e-10)
        sparse = lpgd(sp.csr_matrix(X), d.target, n_components=3, projection=projection, random_state=0, tol=1e-10)
        assert sparse.objective == pytest.approx(dense.objective, rel=1e-8)
    dense = quiet(bcd, X, d.target, n_components=3, nonnegative=True, max_iter=20, random_state=0)
    sparse = quiet(bcd, sp.csc_matrix(X), d.target, n_components=3, nonnegative=True, max_iter=20, random_state=0)
    assert sparse.objective == pytest.approx(dense.objective, rel=1e-8)


def test_projection_methods_agree():
    d = make_sdl_classification(400, 30, 3, n_aux=1, random_state=6)
    kw = dict(n_components=3, X_aux=d.aux, xi=d.xi, tol=1e-12, max_iter=300)
    exact = lpgd(d.data, d.target, projection="gram", **kw)
    approx = lpgd(d.data, d.target, projection="subspace", random_state=0, **kw)
    assert approx.objective == pytest.approx(exact.objective, rel=1e-7)


def test_class_weights_change_the_fit():
    d = make_sdl_classification(300, 20, 2, random_state=7)
    w = np.where(d.target == 1, 5.0, 1.0)
    plain = lpgd(d.data, d.target, n_components=2)
    weighted = lpgd(d.data, d.target, n_components=2, sample_weight=w)
    assert weighted.intercept[0] > plain.intercept[0]


def test_stationarity_goes_to_zero():
    d = make_sdl_classification(300, 20, 2, random_state=8)
    res = lpgd(d.data, d.target, n_components=2, tol=1e-12, max_iter=200)
    s = res.history["stationarity"]
    assert np.isnan(s[0]) and s[-1] < 1e-4 * s[1]
    assert len(res.history["time"]) == res.n_iter + 1
    assert np.all(np.diff(res.history["time"]) >= 0)


def test_convergence_warning_when_max_iter_is_reached():
    d = make_sdl_classification(100, 10, 2, random_state=9)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        lpgd(d.data, d.target, n_components=2, max_iter=1, tol=0)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        bcd(d.data, d.target, n_components=2, max_iter=1, tol=0)


def test_too_long_fixed_step_is_made_safe():
    d = make_sdl_classification(200, 15, 2, random_state=10)
    res = quiet(lpgd, d.data, d.target, n_components=2, step_size=50.0, max_iter=20, tol=0)
    assert np.all(np.diff(res.history["objective"]) <= 1e-9 * abs(res.objective))
    res = quiet(bcd, d.data, d.target, n_components=2, step_size=50.0, max_iter=20, tol=0)
    assert np.all(np.diff(res.history["objective"]) <= 1e-9 * abs(res.objective))


@pytest.mark.parametrize("solver", [lpgd, bcd])
def test_inputs_are_not_modified(solver):
    d = make_sdl_classification(100, 10, 2, n_aux=1, random_state=11)
    X, y, X_aux = d.data.copy(), d.target.copy(), d.aux.copy()
    quiet(solver, X, y, n_components=2, X_aux=X_aux, max_iter=5)
    np.testing.assert_array_equal(X, d.data)
    np.testing.assert_array_equal(y, d.target)
    np.testing.assert_array_equal(X_aux, d.aux)


@pytest.mark.parametrize("solver", [lpgd, bcd])
def test_function_api_errors_name_the_argument(solver):
    d = make_sdl_classification(50, 10, 2, random_state=12)
    X, y = d.data, d.target
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="X contains NaN"):
        solver(bad, y, n_components=2)
    with pytest.raises(ValueError, match="n_components"):
        solver(X, y, n_components=11)
    with pytest.raises(ValueError, match="two classes"):
        solver(X, np.zeros(50), n_components=2)
    with pytest.raises(ValueError, match="X_aux"):
        solver(X, y, n_components=2, X_aux=np.ones((49, 1)))
    with pytest.raises(ValueError, match="y must be 1-D"):
        solver(X, y[:-1], n_components=2)
    with pytest.raises(ValueError, match="mode"):
        solver(X, y, n_components=2, mode="both")
    with pytest.raises(ValueError, match="xi"):
        solver(X, y, n_components=2, xi=0)


def test_bcd_rejects_negative_data_when_nonnegative():
    d = make_sdl_classification(50, 10, 2, random_state=13)
    with pytest.raises(ValueError, match="negative"):
        bcd(d.data, d.target, n_components=2, nonnegative=True)


def test_bcd_radius_limits_every_move():
    d = make_sdl_classification(200, 20, 2, random_state=14)
    res = quiet(bcd, d.data, d.target, n_components=2, radius=1e-3, max_iter=3, tol=0)
    free = quiet(bcd, d.data, d.target, n_components=2, max_iter=3, tol=0)
    # a tiny radius keeps the iterate close to the start: the objective moves much less
    start = res.history["objective"][0]
    assert abs(start - res.objective) < 0.05 * abs(start - free.objective)


@pytest.mark.parametrize("mode", ["filter", "feature"])
def test_lpgd_reaches_the_same_minimum_from_random_starts(mode):
    d = make_sdl_classification(400, 30, 3, n_aux=2, mode=mode, random_state=15)
    values = [
        lpgd(d.data, d.target, n_components=3, mode=mode, X_aux=d.aux, xi=d.xi, init="random",
             random_state=seed, tol=1e-12, max_iter=500).objective
        for seed in range(4)
    ]
    assert max(values) - min(values) < 1e-9 * abs(min(values))
    with pytest.raises(ValueError, match="'init' parameter of lpgd must be"):
        lpgd(d.data, d.target, n_components=3, init="zeros")


@pytest.mark.parametrize("mode", ["filter", "feature"])
def test_bcd_with_tol_zero_runs_every_sweep(mode):
    """At the rounding floor a sweep may raise the objective by a few ulps: with automatic steps
    BCD carries on (only a sweep that leaves the float range is undone), so convergence
    experiments with tol=0 get their max_iter sweeps."""
    d = make_sdl_classification(600, 60, 4, n_aux=2, mode=mode, random_state=0)
    res = quiet(bcd, d.data, d.target, n_components=4, mode=mode, X_aux=d.aux, xi=d.xi, tol=0, max_iter=60,
                init="random", random_state=0)
    assert res.n_iter == 60 and len(res.history["objective"]) == 61
