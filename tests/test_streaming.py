"""SDLClassifier.partial_fit: streaming feature-mode SDL in mini-batches."""

import numpy as np
import pytest
from scipy.linalg import subspace_angles
from sklearn.base import clone

from sdlearn import SDLClassifier
from sdlearn.datasets import make_sdl_classification


@pytest.fixture(scope="module")
def stream_data():
    return make_sdl_classification(3000, 40, 3, n_aux=2, n_classes=3, mode="feature", class_sep=2.0, random_state=0)


def stream(clf, d, stop, batch=200):
    for start in range(0, stop, batch):
        rows = slice(start, start + batch)
        clf.partial_fit(d.data[rows], d.target[rows], classes=[0, 1, 2], X_aux=d.aux[rows])
    return clf


def test_streaming_matches_the_batch_fit(stream_data):
    d = stream_data
    kw = dict(n_components=3, mode="feature", solver="bcd", xi=d.xi, random_state=0)
    full = SDLClassifier(**kw).fit(d.data[:2500], d.target[:2500], X_aux=d.aux[:2500])
    streamed = stream(SDLClassifier(**kw), d, 2500)
    test = slice(2500, None)
    full_score = full.score(d.data[test], d.target[test], X_aux=d.aux[test])
    streamed_score = streamed.score(d.data[test], d.target[test], X_aux=d.aux[test])
    assert streamed_score >= full_score - 0.02
    assert np.max(subspace_angles(streamed.components_.T, d.dictionary.T)) < 0.05
    assert streamed.n_iter_ == 13 and len(streamed.history_["objective"]) == 13


def test_memory_does_not_grow_with_the_stream(stream_data):
    clf = stream(SDLClassifier(3, mode="feature", solver="bcd"), stream_data, 400)
    state_size = sum(a.nbytes for a in vars(clf._stream).values() if isinstance(a, np.ndarray))
    stream(clf, stream_data, 2400)
    assert sum(a.nbytes for a in vars(clf._stream).values() if isinstance(a, np.ndarray)) == state_size


def test_fit_after_partial_fit_starts_over(stream_data):
    d = stream_data
    clf = stream(SDLClassifier(3, mode="feature", solver="bcd"), d, 400)
    clf.fit(d.data[:500], d.target[:500], X_aux=d.aux[:500])
    assert not hasattr(clf, "_stream")
    clone(clf).partial_fit(d.data[:100], d.target[:100], classes=[0, 1, 2], X_aux=d.aux[:100])


def test_nonnegative_streaming_keeps_factors_nonnegative():
    d = make_sdl_classification(2000, 30, 3, mode="feature", nonnegative=True, class_sep=3.0, random_state=1)
    clf = SDLClassifier(3, mode="feature", solver="bcd", nonnegative=True)
    for start in range(0, 1500, 100):
        clf.partial_fit(d.data[start:start + 100], d.target[start:start + 100], classes=[0, 1])
    assert clf.components_.min() >= 0
    assert clf.transform(d.data[:50]).min() >= 0
    bayes = np.mean(d.proba[1500:].argmax(axis=1) == d.target[1500:])
    assert clf.score(d.data[1500:], d.target[1500:]) > bayes - 0.1


def test_partial_fit_errors(stream_data):
    d = stream_data
    with pytest.raises(AttributeError, match="partial_fit"):
        SDLClassifier(3, solver="lpgd").partial_fit(d.data[:50], d.target[:50])
    assert not hasattr(SDLClassifier(3, mode="filter", solver="bcd"), "partial_fit")
    with pytest.raises(ValueError, match="balanced"):
        SDLClassifier(3, mode="feature", solver="bcd", class_weight="balanced").partial_fit(d.data[:50], d.target[:50])
    with pytest.raises(ValueError, match="two classes"):
        SDLClassifier(3, mode="feature", solver="bcd").partial_fit(d.data[:50], np.zeros(50))
    clf = SDLClassifier(3, mode="feature", solver="bcd").partial_fit(d.data[:50], d.target[:50] % 2, classes=[0, 1])
    with pytest.raises(ValueError, match="labels not in classes"):
        clf.partial_fit(d.data[:50], d.target[:50] + 5)
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(d.data[:50, :10], d.target[:50] % 2)


def test_fit_stream_on_numpy_batches(stream_data):
    from sdlearn import fit_stream

    d = stream_data
    clf = fit_stream(SDLClassifier(3, mode="feature", solver="bcd"), d.data, d.target, X_aux=d.aux,
                     batch_size=500, n_epochs=2)
    assert clf.n_iter_ == 12
    assert clf.score(d.data, d.target, X_aux=d.aux) > 0.7


def test_fit_stream_on_a_local_dask_cluster(stream_data):
    da = pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")
    from sdlearn import fit_stream

    d = stream_data
    X = da.from_array(d.data, chunks=(600, -1))
    y = da.from_array(d.target, chunks=600)
    X_aux = da.from_array(d.aux, chunks=(600, -1))
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster):
        clf = fit_stream(SDLClassifier(3, mode="feature", solver="bcd", random_state=0), X, y, X_aux=X_aux)
    reference = fit_stream(SDLClassifier(3, mode="feature", solver="bcd", random_state=0),
                           d.data, d.target, X_aux=d.aux, batch_size=600)
    assert clf.n_iter_ == 5
    np.testing.assert_allclose(clf.components_, reference.components_)
    np.testing.assert_allclose(clf.coef_, reference.coef_)
