"""The solvers and the estimator on other array libraries: array_api_strict and torch on CPU,
CuPy and torch on CUDA behind the ``gpu`` marker (run ``pytest -m gpu`` on a GPU machine)."""

import importlib.util

import numpy as np
import pytest
import sklearn

from sdlearn import SDLClassifier, bcd, lpgd
from sdlearn._backend import to_numpy
from sdlearn.datasets import make_sdl_classification

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _torch_cuda():
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


def _cupy_gpu():
    if importlib.util.find_spec("cupy") is None:
        return False
    import cupy

    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except cupy.cuda.runtime.CUDARuntimeError:
        return False


def _converter(name):
    if name == "strict":
        xps = pytest.importorskip("array_api_strict")
        return lambda a: xps.asarray(a)
    if name == "strict-device1":
        xps = pytest.importorskip("array_api_strict")
        return lambda a: xps.asarray(a.astype(np.float32) if a.dtype.kind == "f" else a, device=xps.Device("device1"))
    if name.startswith("torch"):
        torch = pytest.importorskip("torch")
        device = "cuda" if name == "torch-cuda" else "cpu"
        return lambda a: torch.asarray(a, device=device)
    if name == "cupy":
        cupy = pytest.importorskip("cupy")
        return cupy.asarray
    raise ValueError(name)


CPU = ["strict", "strict-device1", "torch-cpu"]
GPU = [
    pytest.param("torch-cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(not _torch_cuda(), reason="no CUDA")]),
    pytest.param("cupy", marks=[pytest.mark.gpu, pytest.mark.skipif(not _cupy_gpu(), reason="no CuPy GPU")]),
]


@pytest.fixture(scope="module")
def data():
    return make_sdl_classification(300, 20, 3, n_classes=3, n_aux=2, random_state=0)


@pytest.mark.parametrize("backend", CPU + GPU)
@pytest.mark.parametrize("solver", [lpgd, bcd])
@pytest.mark.parametrize("mode", ["filter", "feature"])
def test_solvers_match_numpy(data, backend, solver, mode):
    convert = _converter(backend)
    kw = dict(n_components=3, mode=mode, max_iter=30, tol=0, random_state=0)
    ref = solver(data.data, data.target, X_aux=data.aux, **kw)
    with sklearn.config_context(array_api_dispatch=True):
        res = solver(convert(data.data), data.target, X_aux=convert(data.aux), **kw)
    assert type(res.components).__module__.split(".")[0] == type(convert(data.data)).__module__.split(".")[0]
    rtol = 1e-3 if backend == "strict-device1" else 1e-8
    assert res.objective == pytest.approx(ref.objective, rel=rtol)


@pytest.mark.parametrize("backend", CPU + GPU)
@pytest.mark.parametrize("mode", ["filter", "feature"])
def test_subspace_projector_matches_numpy(data, backend, mode):
    """The warm-started block eigensolver (what 'auto' picks for large data) in each namespace."""
    convert = _converter(backend)
    kw = dict(n_components=3, mode=mode, max_iter=30, tol=0, projection="subspace", random_state=0)
    ref = lpgd(data.data, data.target, X_aux=data.aux, **kw)
    with sklearn.config_context(array_api_dispatch=True):
        res = lpgd(convert(data.data), data.target, X_aux=convert(data.aux), **kw)
    f = np.asarray(res.history["objective"])
    assert np.all(np.diff(f) <= 1e-5 * np.abs(f[1:]))  # monotone up to float32 rounding
    rtol = 1e-3 if backend == "strict-device1" else 1e-8
    assert res.objective == pytest.approx(ref.objective, rel=rtol)


@pytest.mark.parametrize("backend", CPU + GPU)
def test_estimator_stays_in_the_namespace(data, backend):
    convert = _converter(backend)
    X, X_aux = convert(data.data), convert(data.aux)
    with sklearn.config_context(array_api_dispatch=True):
        clf = SDLClassifier(3, random_state=0).fit(X, data.target, X_aux=X_aux)
        proba = clf.predict_proba(X, X_aux=X_aux)
        codes = clf.transform(X)
        module = type(X).__module__.split(".")[0]
        for out in (clf.components_, clf.coef_, proba, codes, clf.predict(X, X_aux=X_aux)):
            assert type(out).__module__.split(".")[0] == module
        assert isinstance(clf.score(X, data.target, X_aux=X_aux), float)
        with pytest.raises(ValueError, match="must use the same namespace"):
            clf.predict(data.data, X_aux=data.aux)
    ref = SDLClassifier(3, random_state=0).fit(data.data, data.target, X_aux=data.aux)
    expected = ref.predict_proba(data.data, X_aux=data.aux)
    if backend == "strict-device1":
        # a float32 fit stops where float32 objective values stop decreasing: close, not equal
        np.testing.assert_allclose(to_numpy(proba), expected, atol=0.05)
        assert np.mean(to_numpy(proba).argmax(axis=1) == expected.argmax(axis=1)) > 0.97
    else:
        np.testing.assert_allclose(to_numpy(proba), expected, atol=1e-6)
