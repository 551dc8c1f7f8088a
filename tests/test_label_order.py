"""The fit does not depend on the order of the labels (symmetric multinomial ridge), and with
full rank and a tiny xi it is scikit-learn's (multinomial) LogisticRegression(C=1)."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_iris, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from sdlearn import SDLClassifier
from sdlearn._objective import contrast_metric, contrast_roots
from sdlearn.datasets import make_sdl_classification
from sdlearn.metrics import subspace_distance

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# relabellings of four classes: the baseline changes, the other labels move
PERMUTATIONS = [np.array([2, 0, 3, 1]), np.array([3, 2, 1, 0]), np.array([0, 1, 3, 2])]


@pytest.fixture(scope="module")
def four_classes():
    return make_sdl_classification(300, 20, 3, n_classes=4, n_aux=2, random_state=0)


@pytest.mark.parametrize("perm", PERMUTATIONS, ids=lambda p: "".join(map(str, p)))
@pytest.mark.parametrize("solver", ["lpgd", "bcd"])
@pytest.mark.parametrize("mode", ["filter", "feature"])
def test_relabelling_only_permutes_the_probabilities(four_classes, mode, solver, perm):
    d = four_classes
    kw = dict(n_components=3, mode=mode, solver=solver, xi=d.xi, max_iter=30, tol=0, random_state=0)
    a = SDLClassifier(**kw).fit(d.data, d.target, X_aux=d.aux)
    b = SDLClassifier(**kw).fit(d.data, perm[d.target], X_aux=d.aux)
    # column k of a is class k; in b class k is called perm[k]
    np.testing.assert_allclose(b.predict_proba(d.data, X_aux=d.aux)[:, perm], a.predict_proba(d.data, X_aux=d.aux),
                               atol=1e-7)
    assert b.history_["objective"][-1] == pytest.approx(a.history_["objective"][-1], rel=1e-10)
    assert subspace_distance(b.components_, a.components_) < 1e-6  # the same dictionary


def test_relabelling_a_stream_only_permutes_the_probabilities(four_classes):
    d = four_classes
    perm = PERMUTATIONS[0]
    a = SDLClassifier(3, mode="feature", solver="bcd", random_state=0)
    b = SDLClassifier(3, mode="feature", solver="bcd", random_state=0)
    for start in range(0, 300, 100):
        rows = slice(start, start + 100)
        a.partial_fit(d.data[rows], d.target[rows], classes=[0, 1, 2, 3], X_aux=d.aux[rows])
        b.partial_fit(d.data[rows], perm[d.target[rows]], classes=[0, 1, 2, 3], X_aux=d.aux[rows])
    np.testing.assert_allclose(b.predict_proba(d.data, X_aux=d.aux)[:, perm], a.predict_proba(d.data, X_aux=d.aux),
                               atol=1e-7)


def test_the_penalty_is_invariant_under_relabelling():
    """tr(V M V^T) on the contrasts equals the symmetric ridge of the K class vectors,
    whatever the baseline; M^(1/2) and M^(-1/2) are the roots the solvers use."""
    rng = np.random.default_rng(0)
    K, p = 5, 7
    B = rng.standard_normal((p, K))  # one coefficient vector per class
    centred = B - B.mean(axis=1, keepdims=True)
    M = contrast_metric(K)
    for baseline in range(K):
        V = np.delete(B, baseline, axis=1) - B[:, [baseline]]  # contrasts against the baseline
        assert np.trace(V @ M @ V.T) == pytest.approx(np.sum(centred**2), rel=1e-12)
    root, inverse_root = contrast_roots(K)
    np.testing.assert_allclose(root @ root, M, atol=1e-12)
    np.testing.assert_allclose(root @ inverse_root, np.eye(K - 1), atol=1e-12)
    assert contrast_roots(2) == (None, None) and contrast_metric(2).tolist() == [[1.0]]


@pytest.mark.parametrize("loader", [load_iris, load_wine, load_breast_cancer], ids=lambda f: f.__name__[5:])
@pytest.mark.parametrize("solver", ["lpgd", "bcd"])
def test_full_rank_and_tiny_xi_is_logistic_regression(loader, solver):
    """Full rank (r = p, no constraint on the classifier) and xi -> 0: the classifier part alone,
    the ridge of LogisticRegression(C=1) on [X, X_aux], binary and multinomial."""
    X, y = loader(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    X_main, X_aux = X[:, :-2], X[:, -2:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference = LogisticRegression(C=1.0, tol=1e-12, max_iter=10000).fit(X, y).predict_proba(X)
    clf = SDLClassifier(X_main.shape[1], solver=solver, xi=1e-10, tol=1e-14, max_iter=3000)
    clf.fit(X_main, y, X_aux=X_aux)
    np.testing.assert_allclose(clf.predict_proba(X_main, X_aux=X_aux), reference, atol=2e-6)
