"""Observing a fit: the callback, the progress display, and a history that is the objective."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import sdlearn._history as history_module
from sdlearn import SDLClassifier, bcd, lpgd
from sdlearn._backend import get_namespace
from sdlearn._objective import sdl_objective
from sdlearn.datasets import make_sdl_classification

xp = get_namespace(np.zeros(1))
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def data():
    return make_sdl_classification(200, 15, 3, n_classes=3, n_aux=2, random_state=0)


def user_objective(X, y, X_aux, W, C, beta, gamma, b, *, xi, alpha, mode, classes, sample_weight=None):
    """The shared objective function in the user's units."""
    Y = (np.asarray(y)[:, None] == np.asarray(classes)[None, 1:]).astype(float)
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    return sdl_objective(X, Y, w, X_aux, W, C, beta, gamma, b, xi=xi, alpha=alpha, mode=mode, xp=xp)


@pytest.mark.parametrize("solver", [lpgd, bcd])
@pytest.mark.parametrize("mode", ["filter", "feature"])
def test_callback_sees_every_iterate_and_can_stop(data, solver, mode):
    seen = []

    def callback(iteration, factors, entry):
        seen.append((iteration, entry["objective"], factors.components.shape, factors.n_iter))
        return iteration == 3

    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # a stop by the callback is not a failure
        res = solver(data.data, data.target, n_components=3, mode=mode, X_aux=data.aux, xi=data.xi, tol=0,
                     max_iter=50, callback=callback)
    assert [s[0] for s in seen] == [0, 1, 2, 3]
    assert res.n_iter == 3 and not res.converged
    assert [s[1] for s in seen] == res.history["objective"]
    assert all(s[2] == (3, 15) and s[3] == s[0] for s in seen)


@pytest.mark.parametrize("solver", [lpgd, bcd])
def test_callback_factors_are_the_result_at_that_iteration(data, solver):
    snapshots = {}

    def callback(iteration, factors, entry):
        snapshots[iteration] = (factors.components, factors.coef, factors.intercept)

    full = solver(data.data, data.target, n_components=3, X_aux=data.aux, max_iter=6, tol=0, callback=callback)
    short = solver(data.data, data.target, n_components=3, X_aux=data.aux, max_iter=3, tol=0,
                   callback=lambda i, f, e: i == 3)
    components, coef, intercept = snapshots[3]
    np.testing.assert_allclose(components, short.components, atol=1e-12)
    np.testing.assert_allclose(coef, short.coef, atol=1e-10)
    np.testing.assert_allclose(intercept, short.intercept, atol=1e-10)
    np.testing.assert_allclose(snapshots[full.n_iter][1], full.coef)


def test_estimator_callback_and_unused_factors_cost_nothing(data):
    entries = []
    clf = SDLClassifier(3, xi=data.xi, callback=lambda i, f, e: entries.append(e) or False)
    clf.fit(data.data, data.target, X_aux=data.aux)
    assert [e["objective"] for e in entries] == clf.history_["objective"]
    assert len(entries) == clf.n_iter_ + 1


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("solver", [lpgd, bcd])
@pytest.mark.parametrize("mode", ["filter", "feature"])
def test_recorded_objective_is_the_shared_objective_at_the_returned_factors(solver, mode, n_classes):
    d = make_sdl_classification(150, 12, 2, n_classes=n_classes, n_aux=1, mode=mode, random_state=1)
    w = np.where(d.target == 1, 3.0, 1.0)
    res = solver(d.data, d.target, n_components=2, mode=mode, X_aux=d.aux, sample_weight=w, xi=0.3, alpha=0.7,
                 max_iter=40, tol=1e-9)
    parts = user_objective(d.data, d.target, d.aux, res.components.T, res.codes, res.coef.T, res.aux_coef.T,
                           res.intercept, xi=0.3, alpha=0.7, mode=mode, classes=res.classes, sample_weight=w)
    for key in ("objective", "logistic", "reconstruction", "penalty"):
        assert res.history[key][-1] == pytest.approx(parts[key], rel=1e-8, abs=1e-10)


def test_streamed_history_is_the_shared_objective_of_each_batch(data):
    clf = SDLClassifier(3, mode="feature", solver="bcd", xi=0.4, alpha=0.5)
    for start in range(0, 200, 50):
        rows = slice(start, start + 50)
        X, y, X_aux = data.data[rows], data.target[rows], data.aux[rows]
        clf.partial_fit(X, y, classes=[0, 1, 2], X_aux=X_aux)
        parts = user_objective(X, y, X_aux, clf.components_.T, clf.transform(X), clf.coef_.T, clf.aux_coef_.T,
                               clf.intercept_, xi=0.4, alpha=0.5, mode="feature", classes=clf.classes_)
        for key in ("objective", "logistic", "reconstruction", "penalty"):
            assert clf.history_[key][-1] == pytest.approx(parts[key], rel=1e-8)


def test_verbose_shows_a_progress_bar_with_the_objective(data, capsys):
    pytest.importorskip("tqdm")
    lpgd(data.data, data.target, n_components=3, max_iter=5, tol=0, verbose=1)
    captured = capsys.readouterr()
    assert "lpgd" in captured.err and "objective" in captured.err


def test_verbose_without_tqdm_prints_lines(data, capsys, monkeypatch):
    monkeypatch.setattr(history_module, "_tqdm", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        bcd(data.data, data.target, n_components=3, max_iter=12, tol=0, verbose=1)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[bcd]")]
    assert len(lines) == 2 and "objective" in lines[0]  # iterations 0 and 10
    lpgd(data.data, data.target, n_components=3, max_iter=3, tol=0, verbose=2)
    assert "[lpgd] iter    3" in capsys.readouterr().out
