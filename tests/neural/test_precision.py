"""Mixed precision: bfloat16 autocast on the CPU for every estimator; float16 refused off CUDA."""

import numpy as np
import pytest
import torch
from sklearn.base import clone

from _small import NAMES, data, make, predictions
from neural._precision import autocast, make_grad_scaler
from neural.callbacks import Callback


class MatmulDtypes(Callback):
    """Dtypes of the outputs of every Linear / Conv2d during the first training step."""

    def on_train_begin(self, estimator, **kwargs):
        self.dtypes = set()
        self.handles = [m.register_forward_hook(self._record) for m in estimator.module_.modules()
                        if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]

    def _record(self, module, inputs, output):
        self.dtypes.add(output.dtype)

    def on_batch_end(self, estimator, **kwargs):
        for h in self.handles:
            h.remove()
        self.handles = []


@pytest.mark.parametrize("name", NAMES)
def test_bf16_trains_every_estimator_on_the_cpu(name):
    X, y, fit_params = data(name)
    spy = MatmulDtypes()
    est = make(name, max_iter=2, precision="bf16", callbacks=[spy]).fit(X, y, **fit_params)
    ref = make(name, max_iter=2).fit(X, y, **fit_params)
    # the forward really ran in bfloat16, the weights stayed float32
    assert spy.dtypes == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in est.module_.parameters())
    assert np.isfinite(est.loss_curve_).all()
    # close to float32 (bfloat16 keeps 8 bits of mantissa), not equal
    np.testing.assert_allclose(est.loss_curve_, ref.loss_curve_, rtol=0.02)
    assert est.loss_curve_ != ref.loss_curve_
    proba = predictions(est, X)
    assert proba.dtype == np.float64 and np.isfinite(proba).all()


def test_bf16_fit_is_reproducible_and_saves_its_precision(tmp_path):
    X, y, _ = data("local")
    a = make("local", max_iter=1, precision="bf16").fit(X, y)
    b = make("local", max_iter=1, precision="bf16").fit(X, y)
    np.testing.assert_array_equal(predictions(a, X), predictions(b, X))
    a.save(tmp_path / "m.pt")
    loaded = type(a).load(tmp_path / "m.pt")
    assert loaded.precision == "bf16"
    np.testing.assert_array_equal(predictions(loaded, X), predictions(a, X))


def test_float16_is_refused_on_the_cpu():
    X, y, _ = data("local")
    est = make("local", max_iter=1, precision="16")
    with pytest.raises(ValueError, match=r"precision='16'.*needs a CUDA device.*'bf16'"):
        est.fit(X, y)
    assert not hasattr(est, "module_")


@pytest.mark.parametrize("bad", ["fp16", 16, "64", None])
def test_precision_must_be_one_of_three(bad):
    X, y, _ = data("local")
    with pytest.raises(ValueError, match="'precision' parameter"):
        make("local", precision=bad).fit(X, y)


def test_float16_model_loaded_on_the_cpu_predicts_in_float32():
    cpu = torch.device("cpu")
    assert make_grad_scaler("16", cpu) is None and make_grad_scaler("bf16", cpu) is None
    with autocast("16", cpu):
        assert not torch.is_autocast_enabled("cpu")
    with autocast("bf16", cpu):
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16
    with autocast("32", cpu):
        assert not torch.is_autocast_enabled("cpu")


def test_precision_is_a_plain_parameter():
    est = make("dtop", precision="bf16")
    assert clone(est).get_params()["precision"] == "bf16"
    assert make("dtop").get_params()["precision"] == "32"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", NAMES)
def test_float16_with_gradient_scaling_on_cuda_resumes(tmp_path, name):
    X, y, fit_params = data(name)

    class Interrupt(Callback):
        def on_epoch_end(self, estimator, **kwargs):
            if kwargs["epoch"] == 1:
                estimator.save(tmp_path / "ckpt.pt")
                raise KeyboardInterrupt

    whole = make(name, max_iter=2, precision="16", device="cuda").fit(X, y, **fit_params)
    assert whole._grad_scaler_state is not None and whole._grad_scaler_state["scale"] > 0
    assert np.isfinite(whole.loss_curve_).all()
    with pytest.raises(KeyboardInterrupt):
        make(name, max_iter=2, precision="16", device="cuda",
             callbacks=[Interrupt()]).fit(X, y, **fit_params)
    saved = torch.load(tmp_path / "ckpt.pt", weights_only=True)["training"]["scaler"]
    assert saved is not None and saved["scale"] > 0
    resumed = make(name, max_iter=2, precision="16", device="cuda").fit(
        X, y, resume_from=tmp_path / "ckpt.pt", **fit_params)
    assert resumed.n_iter_ == 2 and np.isfinite(resumed.loss_curve_).all()
