"""SDLClassifier as a scikit-learn citizen: checks, pipelines, routing, errors, persistence."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.optimize import nnls
from sklearn import config_context
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from sdlearn import SDLClassifier
from sdlearn.datasets import make_sdl_classification

CONFIGS = [
    SDLClassifier(mode="filter", solver="lpgd"),
    SDLClassifier(mode="feature", solver="lpgd"),
    SDLClassifier(mode="filter", solver="bcd"),
    SDLClassifier(mode="feature", solver="bcd"),
    SDLClassifier(mode="feature", solver="bcd", nonnegative=True),
]


def expected_failures(estimator):
    if estimator.nonnegative:
        # these checks feed blobs with negative values despite the positive_only tag
        reason = "passes negative data to a nonnegative model"
        return {"check_decision_proba_consistency": reason, "check_class_weight_classifiers": reason}
    return {}


@parametrize_with_checks(CONFIGS, expected_failed_checks=expected_failures)
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


@pytest.fixture(scope="module")
def data():
    return make_sdl_classification(600, 30, 3, n_aux=2, random_state=0)


def fit_quiet(est, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kwargs)


@pytest.mark.parametrize("mode", ["filter", "feature"])
@pytest.mark.parametrize("solver", ["lpgd", "bcd"])
def test_fitted_attributes_and_outputs(data, mode, solver):
    clf = fit_quiet(SDLClassifier(3, mode=mode, solver=solver, xi=data.xi), data.data, data.target, X_aux=data.aux)
    assert clf.components_.shape == (3, 30)
    assert clf.coef_.shape == (1, 3) and clf.aux_coef_.shape == (1, 2) and clf.intercept_.shape == (1,)
    assert clf.n_iter_ == len(clf.history_["objective"]) - 1
    proba = clf.predict_proba(data.data, X_aux=data.aux)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(data.data, X_aux=data.aux)), proba, rtol=1e-10)
    scores = clf.decision_function(data.data, X_aux=data.aux)
    np.testing.assert_array_equal(clf.predict(data.data, X_aux=data.aux), (scores > 0).astype(int))
    codes = clf.transform(data.data)
    assert codes.shape == (600, 3)
    assert clf.inverse_transform(codes).shape == (600, 30)
    assert clf.score(data.data, data.target, X_aux=data.aux) > 0.65
    assert list(clf.get_feature_names_out()) == ["sdlclassifier0", "sdlclassifier1", "sdlclassifier2"]


def test_multiclass_decision_function_and_string_labels():
    d = make_sdl_classification(400, 20, 3, n_classes=3, random_state=1)
    labels = np.array(["cat", "dog", "emu"])[d.target]
    clf = SDLClassifier(3, xi=d.xi).fit(d.data, labels)
    scores = clf.decision_function(d.data)
    assert scores.shape == (400, 3) and np.all(scores[:, 0] == 0)
    assert set(clf.predict(d.data)) <= set(labels)
    np.testing.assert_array_equal(clf.classes_[scores.argmax(axis=1)], clf.predict(d.data))


def test_aux_features_by_index_mask_and_name_match_x_aux(data):
    X_all = np.hstack([data.data, data.aux])
    ref = SDLClassifier(3, xi=data.xi).fit(data.data, data.target, X_aux=data.aux)
    by_index = SDLClassifier(3, xi=data.xi, aux_features=[30, 31]).fit(X_all, data.target)
    mask = np.zeros(32, dtype=bool)
    mask[30:] = True
    by_mask = SDLClassifier(3, xi=data.xi, aux_features=mask).fit(X_all, data.target)
    frame = pd.DataFrame(X_all, columns=[f"f{i}" for i in range(30)] + ["age", "income"])
    by_name = SDLClassifier(3, xi=data.xi, aux_features=["age", "income"]).fit(frame, data.target)
    expected = ref.predict_proba(data.data, X_aux=data.aux)
    for clf, X in ((by_index, X_all), (by_mask, X_all), (by_name, frame)):
        np.testing.assert_allclose(clf.predict_proba(X), expected, rtol=1e-10)
        assert clf.components_.shape == (3, 30) and clf.n_features_in_ == 32


def test_x_aux_routes_through_pipeline_and_cross_validation(data):
    with config_context(enable_metadata_routing=True):
        clf = SDLClassifier(3, xi=data.xi).set_fit_request(X_aux=True).set_score_request(X_aux=True)
        pipe = make_pipeline(StandardScaler(), clf)
        pipe.fit(data.data, data.target, X_aux=data.aux)
        assert pipe[-1].n_aux_ == 2
        result = cross_validate(clf, data.data, data.target, params={"X_aux": data.aux}, cv=3)
        assert np.all(result["test_score"] > 0.6)


def test_pipeline_with_tfidf_and_nonnegative_bcd():
    d = make_sdl_classification(300, 40, 3, nonnegative=True, random_state=2)
    counts = np.round(d.data * 3)
    pipe = make_pipeline(TfidfTransformer(), SDLClassifier(3, solver="bcd", nonnegative=True, max_iter=30))
    fit_quiet(pipe, sp.csr_matrix(counts), d.target)
    assert pipe.score(sp.csr_matrix(counts), d.target) > 0.5
    assert pipe[-1].components_.min() >= 0


def test_grid_search_clone_and_pickle(data):
    X, y = data.data, data.target
    search = GridSearchCV(SDLClassifier(2), {"xi": [0.1, 1.0], "mode": ["filter", "feature"]}, cv=3)
    search.fit(X, y)
    assert search.best_params_["xi"] in (0.1, 1.0)
    clf = clone(search.best_estimator_)
    assert not hasattr(clf, "components_")
    fitted = search.best_estimator_
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict_proba(X), fitted.predict_proba(X))


@pytest.mark.parametrize("solver", ["lpgd", "bcd"])
def test_same_random_state_same_result(data, solver):
    kw = dict(n_components=3, solver=solver, projection="subspace", random_state=0, max_iter=30)
    a = fit_quiet(SDLClassifier(**kw), data.data, data.target, X_aux=data.aux)
    b = fit_quiet(SDLClassifier(**kw), data.data, data.target, X_aux=data.aux)
    np.testing.assert_array_equal(a.components_, b.components_)
    np.testing.assert_array_equal(a.coef_, b.coef_)


def test_warm_start_continues(data):
    clf = SDLClassifier(3, xi=data.xi, warm_start=True, tol=1e-12, max_iter=500)
    clf.fit(data.data, data.target, X_aux=data.aux)
    first = clf.n_iter_
    clf.fit(data.data, data.target, X_aux=data.aux)
    assert clf.n_iter_ < first and clf.n_iter_ <= 5


def test_nonnegative_codes_solve_nnls():
    d = make_sdl_classification(200, 25, 3, nonnegative=True, random_state=3)
    clf = fit_quiet(SDLClassifier(3, mode="feature", solver="bcd", nonnegative=True, max_iter=20,
                                  transform_max_iter=5000), d.data, d.target)
    codes = clf.transform(d.data[:10])
    W = clf.components_.T
    for x, c in zip(d.data[:10], codes):
        reference, _ = nnls(W, x)
        # both minimise the same convex problem: compare objective values
        assert np.sum((x - W @ c) ** 2) == pytest.approx(np.sum((x - W @ reference) ** 2), rel=1e-6, abs=1e-9)
    assert codes.min() >= 0


def test_sparse_and_dense_estimators_agree():
    d = make_sdl_classification(200, 30, 2, nonnegative=True, random_state=4)
    X = d.data * (np.random.default_rng(0).random(d.data.shape) < 0.4)
    dense = SDLClassifier(2, mode="feature").fit(X, d.target)
    sparse = SDLClassifier(2, mode="feature").fit(sp.csr_matrix(X), d.target)
    np.testing.assert_allclose(sparse.predict_proba(sp.csr_matrix(X)), dense.predict_proba(X), rtol=1e-7)


def test_float32_is_preserved(data):
    clf = SDLClassifier(3).fit(data.data.astype(np.float32), data.target)
    assert clf.components_.dtype == np.float32
    assert clf.transform(data.data.astype(np.float32)).dtype == np.float32
    assert clf.predict_proba(data.data.astype(np.float32)).dtype == np.float32


def test_errors_name_the_argument(data):
    X, y = data.data, data.target
    with pytest.raises(ValueError, match="n_components=31"):
        SDLClassifier(31).fit(X, y)
    with pytest.raises(ValueError, match="X_aux has 10 rows"):
        SDLClassifier(2).fit(X, y, X_aux=np.ones((10, 1)))
    with pytest.raises(ValueError, match="one class"):
        SDLClassifier(2).fit(X, np.zeros(len(y)))
    with pytest.raises(ValueError, match="NaN"):
        SDLClassifier(2).fit(np.where(X > 2, np.nan, X), y)
    with pytest.raises(ValueError, match="negative"):
        SDLClassifier(2, solver="bcd", nonnegative=True).fit(X, y)
    with pytest.raises(ValueError, match="solver='bcd'"):
        SDLClassifier(2, nonnegative=True).fit(np.abs(X), y)
    with pytest.raises(ValueError, match="aux_features"):
        SDLClassifier(2, aux_features=["age"]).fit(X, y)
    with pytest.raises(ValueError, match="xi"):
        SDLClassifier(2, xi=0).fit(X, y)
    clf = SDLClassifier(2).fit(X, y, X_aux=data.aux)
    with pytest.raises(ValueError, match="fitted with 2 auxiliary covariates but got 0"):
        clf.predict(X)
    with pytest.raises(ValueError, match="features"):
        clf.predict(X[:, :5], X_aux=data.aux)
    with pytest.raises(NotFittedError):
        SDLClassifier().predict(X)


def test_inputs_are_not_modified(data):
    X, y, X_aux = data.data.copy(), data.target.copy(), data.aux.copy()
    clf = SDLClassifier(3).fit(X, y, X_aux=X_aux)
    clf.predict(X, X_aux=X_aux)
    clf.transform(X)
    np.testing.assert_array_equal(X, data.data)
    np.testing.assert_array_equal(X_aux, data.aux)
    np.testing.assert_array_equal(y, data.target)


def test_verbose_prints_progress(data, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        SDLClassifier(3, verbose=2, max_iter=3, tol=0).fit(data.data, data.target)
    out = capsys.readouterr().out
    assert "[lpgd] iter    3" in out and "objective" in out


def test_class_weight_balanced_helps_the_rare_class():
    d = make_sdl_classification(2000, 30, 3, class_sep=1.5, random_state=5)
    keep = (d.target == 0) | (np.random.default_rng(0).random(len(d.target)) < 0.08)
    X, y = d.data[keep], d.target[keep]
    plain = SDLClassifier(3, xi=d.xi).fit(X, y)
    balanced = SDLClassifier(3, xi=d.xi, class_weight="balanced").fit(X, y)
    recall = lambda clf: np.mean(clf.predict(X[y == 1]) == 1)  # noqa: E731
    assert recall(balanced) > recall(plain)
