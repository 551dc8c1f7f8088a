"""scikit-learn compatibility, persistence, reproducibility and input errors."""

import pickle
import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

from neural import LocalLearningClassifier
from neural._utils import decode_params, encode_params
from neural.datasets import load_digits_images, make_shapes

SMALL = dict(backbone="resnet8", width=4, batch_size=32, learning_rate_init=0.01, device="cpu")


def small(method="dgl", **kw):
    return LocalLearningClassifier(method=method, **{"n_local_modules": 2, **SMALL, **kw})


@parametrize_with_checks(
    # every check applies and passes: no expected_failed_checks
    [small(m, max_iter=6) for m in ("bp", "dgl", "infopro", "man", "auglocal")]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def fitted(X, y, **kw):
    return small(**{"max_iter": 2, "random_state": 0, **kw}).fit(X, y)


def test_reproducible_with_random_state(shapes_small):
    X, y, Xt, _ = shapes_small
    for method in ("man", "auglocal"):
        a = fitted(X, y, method=method).predict_proba(Xt)
        b = fitted(X, y, method=method).predict_proba(Xt)
        np.testing.assert_array_equal(a, b)
    c = fitted(X, y, method="auglocal", random_state=1).predict_proba(Xt)
    assert not np.array_equal(b, c)


def test_fit_does_not_touch_global_rng(shapes_small):
    X, y, _, _ = shapes_small
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    fitted(X, y)
    torch.testing.assert_close(torch.rand(3), expected)


def test_clone_and_grid_search(shapes_small):
    X, y, _, _ = shapes_small
    est = small(max_iter=2, random_state=0)
    c = clone(est)
    assert c.get_params() == est.get_params() and not hasattr(c, "module_")
    grid = GridSearchCV(est, {"method": ["dgl", "auglocal"], "n_local_modules": [2, 3]}, cv=2)
    grid.fit(X[:200], y[:200])
    assert set(grid.best_params_) == {"method", "n_local_modules"}
    assert 0 <= grid.best_score_ <= 1


def test_pickle_and_joblib(shapes_small, tmp_path):
    X, y, Xt, _ = shapes_small
    est = fitted(X, y, method="man")
    expected = est.predict_proba(Xt)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(est)).predict_proba(Xt), expected)
    joblib.dump(est, tmp_path / "m.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "m.joblib").predict_proba(Xt), expected)


@pytest.mark.parametrize("method", ["bp", "man", "auglocal"])
def test_save_load_round_trip(shapes_small, tmp_path, method):
    X, y, Xt, _ = shapes_small
    labels = np.array(["bar", "cross", "disk", "dots", "hbar", "plus", "ring", "sq", "vbar", "x"])
    est = fitted(X, labels[y], method=method, infopro_lambdas=(1.0, 1.0, 0.5, 1.0))
    path = tmp_path / "model.pt"
    est.save(path)
    loaded = LocalLearningClassifier.load(path)
    assert loaded.get_params() == est.get_params()
    assert isinstance(loaded.infopro_lambdas, tuple)
    np.testing.assert_array_equal(loaded.classes_, est.classes_)
    np.testing.assert_array_equal(loaded.predict_proba(Xt), est.predict_proba(Xt))
    assert loaded.history_ == est.history_
    assert loaded.peak_activation_bytes_ == est.peak_activation_bytes_
    assert loaded.peak_memory_bytes_ == est.peak_memory_bytes_ > 0
    # weights only: the file loads with torch's safe loader
    payload = torch.load(path, weights_only=True)
    assert set(payload) == {"format", "class", "params", "fitted", "state_dict", "training"}
    # training can resume
    loaded.partial_fit(X, labels[y])
    assert loaded.n_iter_ == est.n_iter_ + 1


def test_files_without_peak_memory_still_load(shapes_small, tmp_path):
    X, y, Xt, _ = shapes_small
    est = fitted(X, y)
    path = tmp_path / "old.pt"
    est.save(path)
    payload = torch.load(path, weights_only=True)
    fitted_attributes = decode_params(payload["fitted"])
    del fitted_attributes["peak_memory_bytes_"]  # as written before the attribute existed
    payload["fitted"] = encode_params(fitted_attributes)
    torch.save(payload, path)
    loaded = LocalLearningClassifier.load(path)
    assert loaded.peak_memory_bytes_ is None
    np.testing.assert_array_equal(loaded.predict(Xt), est.predict(Xt))


def test_save_rejects_unsaveable_params_and_foreign_files(shapes_small, tmp_path):
    X, y, _, _ = shapes_small
    est = fitted(X, y)
    est.random_state = np.random.RandomState(0)
    with pytest.raises(TypeError, match="random_state"):
        est.save(tmp_path / "a.pt")
    torch.save({"x": torch.zeros(1)}, tmp_path / "b.pt")
    with pytest.raises(ValueError, match="not written by"):
        LocalLearningClassifier.load(tmp_path / "b.pt")
    with pytest.raises(NotFittedError):
        small().save(tmp_path / "c.pt")


def test_input_formats_agree(shapes_small):
    X, y, Xt, _ = shapes_small
    ref = fitted(X, y).predict_proba(Xt)
    flat = fitted(X.reshape(len(X), -1), y, input_shape=(3, 8, 8))
    np.testing.assert_allclose(flat.predict_proba(Xt.reshape(len(Xt), -1)), ref, rtol=1e-6)
    tens = fitted(torch.from_numpy(X), torch.from_numpy(y))
    np.testing.assert_allclose(tens.predict_proba(torch.from_numpy(Xt)), ref, rtol=1e-6)
    gray = fitted(X[:, 0], y)  # (n, H, W) is one channel
    assert gray.input_shape_ == (1, 8, 8)
    assert gray.predict(Xt[:, 0]).shape == (len(Xt),)
    # works after a transformer in a pipeline, on flat rows
    pipe = make_pipeline(FunctionTransformer(lambda a: a * 2.0), small(max_iter=1,
                         input_shape=(3, 8, 8)))
    assert pipe.fit(X.reshape(len(X), -1), y).score(Xt.reshape(len(Xt), -1), _) >= 0


def test_digits_images():
    X, y = load_digits_images(16)
    assert X.shape == (1797, 1, 16, 16) and X.dtype == np.float32
    assert 0.0 <= X.min() and X.max() <= 1.0 and set(np.unique(y)) == set(range(10))


@pytest.mark.parametrize(
    "params, match",
    [
        ({"method": "sgd"}, "'method' parameter"),
        ({"n_local_modules": 5}, "larger than the number of layers"),
        ({"backbone": "resnet9"}, "resnet"),
        ({"man_base": "auglocal"}, "man_base"),
        ({"split": "random"}, "split"),
        ({"infopro_lambdas": (1.0, 2.0)}, "infopro_lambdas"),
        ({"device": "tpu"}, "device"),
        ({"input_shape": (3, -8)}, "input_shape"),
        ({"man_momentum": 1.5}, "man_momentum"),
    ],
)
def test_bad_parameters_raise_clear_errors(shapes_small, params, match):
    X, y, _, _ = shapes_small
    with pytest.raises(ValueError, match=match):
        small(**params).fit(X, y)


def test_bad_inputs_raise_clear_errors(shapes_small):
    X, y, Xt, _ = shapes_small
    est = fitted(X, y)
    with pytest.raises(ValueError, match=r"fitted on samples of shape \(3, 8, 8\)"):
        est.predict(Xt[:, :, :4, :4])
    with pytest.raises(ValueError, match="features"):
        est.predict(Xt.reshape(len(Xt), -1))  # fitted on images, not flat rows
    with pytest.raises(ValueError, match="dimensions"):
        small().fit(X[..., None], y)
    bad = X.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        small().fit(bad, y)
    with pytest.raises(ValueError, match="input_shape"):
        small(input_shape=(3, 4, 4)).fit(X.reshape(len(X), -1), y)
    with pytest.raises(ValueError, match="2 classes"):
        small().fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="not seen"):
        small().partial_fit(X, y % 5).partial_fit(X, y)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            small(device="cuda").fit(X, y)


def test_partial_fit_warm_start_and_history(shapes_small):
    X, y, _, _ = shapes_small
    est = small(random_state=0).partial_fit(X, y, classes=np.arange(10))
    est.partial_fit(X, y)
    assert est.n_iter_ == 2 and len(est.history_) == 2
    assert {"epoch", "loss", "lr", "time"} <= set(est.history_[0])
    warm = fitted(X, y, warm_start=True, max_iter=2)
    first = warm.module_
    warm.fit(X, y)
    assert warm.module_ is first and warm.n_iter_ == 4
    cold = fitted(X, y, max_iter=2)
    cold_module = cold.module_
    cold.fit(X, y)
    assert cold.module_ is not cold_module and cold.n_iter_ == 2


def test_early_stopping_keeps_best_validation_score(shapes_small):
    X, y, _, _ = shapes_small
    est = small(early_stopping=True, n_iter_no_change=2, max_iter=30, random_state=0,
                validation_fraction=0.2).fit(X, y)
    assert est.n_iter_ < 30
    assert est.best_validation_score_ == max(est.validation_scores_)
    assert all("validation_score" in h for h in est.history_)


def test_convergence_warning_and_verbose(shapes_small, capsys):
    X, y, _, _ = shapes_small
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        small(max_iter=1, verbose=1).fit(X, y)
    assert "LocalLearningClassifier" in capsys.readouterr().err  # tqdm bar
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        small(max_iter=50, tol=10.0, n_iter_no_change=1).fit(X, y)  # stops early, no warning


def test_memory_and_device_attributes(shapes_small):
    X, y, _, _ = shapes_small
    est = fitted(X, y)
    assert est.peak_activation_bytes_ > 0
    assert est.peak_cuda_memory_bytes_ is None or est.device_.type == "cuda"
    assert est.module_bounds_ == [(0, 2), (2, 4)]


def test_shapes_generator():
    X, y = make_shapes(30, image_size=12, n_channels=2, n_classes=5, random_state=0)
    assert X.shape == (30, 2, 12, 12) and set(y) == set(range(5))
    X2, _ = make_shapes(30, image_size=12, n_channels=2, n_classes=5, random_state=0)
    np.testing.assert_array_equal(X, X2)
    with pytest.raises(ValueError, match="n_classes"):
        make_shapes(10, n_classes=11)
    cluttered, _ = make_shapes(30, image_size=12, n_channels=2, n_classes=5, n_distractors=3,
                               random_state=0)
    assert cluttered.min() >= 0 and cluttered.max() <= 1 and not np.array_equal(cluttered, X)


def test_memory_split_front_loads_modules(shapes_small):
    X, y, _, _ = shapes_small
    est = small(backbone="resnet14", n_local_modules=3, split="memory", max_iter=1,
                random_state=0).fit(X, y)
    sizes = [b - a for a, b in est.module_bounds_]
    assert sizes[0] <= sizes[-1] and sum(sizes) == 7
    explicit = small(backbone="resnet14", n_local_modules=3, split=(0, 3), max_iter=1).fit(X, y)
    assert explicit.module_bounds_ == [(0, 1), (1, 4), (4, 7)]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_fit_matches_cpu_closely(shapes_small):
    X, y, Xt, _ = shapes_small
    gpu = fitted(X, y, method="man", device="cuda")
    assert gpu.device_.type == "cuda" and gpu.peak_cuda_memory_bytes_ > 0
    cpu = fitted(X, y, method="man", device="cpu")
    # same seed, same data: the same activation bytes are saved on both devices
    assert gpu.peak_activation_bytes_ == cpu.peak_activation_bytes_
    assert np.mean(gpu.predict(Xt) == cpu.predict(Xt)) > 0.8
