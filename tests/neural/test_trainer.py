"""The one trainer: checkpoints resume bit for bit, datasets equal arrays, phases, hooks."""

import inspect

import numpy as np
import pytest
import sklearn
import torch
from torch.utils.data import Dataset, IterableDataset

from _small import NAMES, ArrayPairs, data, make, predictions
from neural import BaseTorchEstimator
from neural.callbacks import Callback


class Interrupt(Callback):
    """Save a checkpoint after epoch ``at`` and raise, as a crash right after saving would."""

    def __init__(self, path, at):
        self.path, self.at = path, at

    def on_epoch_end(self, estimator, **kwargs):
        if kwargs["epoch"] == self.at:
            estimator.save(self.path)
            raise KeyboardInterrupt("stopped on purpose")


def assert_same_model(a, b):
    sa, sb = a.module_.state_dict(), b.module_.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key
    assert a.loss_curve_ == b.loss_curve_ and a.n_iter_ == b.n_iter_
    assert [h["lr"] for h in a.history_] == [h["lr"] for h in b.history_]


# every estimator, a 4-epoch fit interrupted after epoch 2; DToP also inside its second phase;
# P2C with early stopping (held-out split, best weights, pair sampling from the history)
CASES = [
    ("local", {"max_iter": 4}, 2),
    ("dtop", {"max_iter": 2, "finetune_iter": 2}, 2),
    ("dtop", {"max_iter": 2, "finetune_iter": 2}, 3),
    ("astr", {"max_iter": 4}, 2),
    ("p2c", {"max_iter": 4, "early_stopping": True, "validation_fraction": 0.25}, 2),
]


@pytest.mark.parametrize("name, params, at", CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES])
def test_resumed_fit_equals_uninterrupted_fit_bit_for_bit(tmp_path, name, params, at):
    X, y, fit_params = data(name)
    whole = make(name, **params).fit(X, y, **fit_params)
    path = tmp_path / "ckpt.pt"
    with pytest.raises(KeyboardInterrupt, match="on purpose"):
        make(name, callbacks=[Interrupt(path, at)], **params).fit(X, y, **fit_params)
    resumed = make(name, **params).fit(X, y, resume_from=path, **fit_params)
    assert_same_model(whole, resumed)
    np.testing.assert_array_equal(predictions(resumed, X), predictions(whole, X))
    # the checkpoint holds the first epochs of the same fit
    assert type(whole).load(path).loss_curve_ == whole.loss_curve_[:at]


def test_resume_needs_the_same_phases_and_a_training_state(tmp_path):
    X, y, _ = data("dtop")
    path = tmp_path / "ckpt.pt"
    with pytest.raises(KeyboardInterrupt):
        make("dtop", max_iter=2, finetune_iter=1, callbacks=[Interrupt(path, 1)]).fit(X, y)
    with pytest.raises(ValueError, match="phases"):
        make("dtop", max_iter=2).fit(X, y, resume_from=path)


class Recorder(Callback):
    def __init__(self):
        self.events = []

    def __getattribute__(self, name):
        if name.startswith("on_"):
            events = object.__getattribute__(self, "events")
            return lambda estimator, **kw: events.append((name, kw.get("epoch"),
                                                          getattr(kw.get("phase"), "name", None)))
        return object.__getattribute__(self, name)


def test_hooks_run_in_order_through_both_dtop_phases():
    X, y, _ = data("dtop")
    rec = Recorder()
    est = make("dtop", max_iter=1, finetune_iter=1, callbacks=[rec]).fit(X, y)
    names = [e[0] for e in rec.events if e[0] != "on_batch_end"]
    assert names == ["on_train_begin", "on_phase_begin", "on_epoch_begin", "on_epoch_end",
                     "on_phase_end", "on_phase_begin", "on_epoch_begin", "on_epoch_end",
                     "on_phase_end", "on_train_end"]
    assert [e[2] for e in rec.events if e[0] == "on_phase_begin"] == ["train", "finetune"]
    assert [e[1] for e in rec.events if e[0] == "on_epoch_end"] == [1, 2]
    batches = sum(e[0] == "on_batch_end" for e in rec.events)
    assert batches == 2 * int(np.ceil(len(X) / est.batch_size))
    # the fine-tuning phase restarts at its own learning rate (0.3 x the initial one by
    # default), with pruning on
    assert est.history_[1]["lr"] == pytest.approx(0.3 * est.learning_rate_init)
    assert est.history_[1]["pruned"] == 1.0


@pytest.mark.parametrize("name", NAMES)
def test_no_estimator_overrides_fit_or_partial_fit(name):
    cls = type(make(name))
    for klass in cls.__mro__[: cls.__mro__.index(BaseTorchEstimator)]:
        assert "fit" not in vars(klass) and "partial_fit" not in vars(klass), klass


def test_input_shape_only_where_images_are_taken():
    assert "input_shape" in make("local").get_params()
    assert "input_shape" in make("dtop").get_params()
    assert "input_shape" not in make("astr").get_params()
    assert "input_shape" not in make("p2c").get_params()


# ------------------------------------------------------------------------------ datasets
def test_dataset_input_equals_arrays_and_worker_processes_change_nothing():
    X, y, _ = data("local")
    ref = make("local", max_iter=2).fit(X, y)
    ds = make("local", max_iter=2).fit(ArrayPairs(X, y))
    assert_same_model(ref, ds)
    workers = make("local", max_iter=2, num_workers=2).fit(ArrayPairs(X, y))
    assert_same_model(ref, workers)
    assert ds.n_features_in_ == ref.n_features_in_ and ds.input_shape_ == ref.input_shape_


def test_dataset_input_errors():
    X, y, _ = data("local")

    class Stream(IterableDataset):
        def __iter__(self):
            return iter(zip(X, y))

    with pytest.raises(TypeError, match="IterableDataset"):
        make("local", max_iter=1).fit(Stream())
    with pytest.raises(ValueError, match="either a dataset"):
        make("local", max_iter=1).fit(ArrayPairs(X, y), y)
    bad = X.astype(np.float64)
    bad[5, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="item 5 of the dataset"):
        make("local", max_iter=1).fit(ArrayPairs(bad, y))
    with pytest.raises(ValueError, match="item 0 of the dataset is a"):
        make("local", max_iter=1).fit(_Single())
    est = make("local", max_iter=1).fit(X, y)
    with pytest.raises(TypeError, match="not a Dataset"):
        est.predict(ArrayPairs(X, y))


class _Single(Dataset):
    def __len__(self):
        return 3

    def __getitem__(self, i):
        return np.zeros((3, 8, 8))


def test_validation_data_is_scored_and_drives_early_stopping():
    X, y, _ = data("local")
    est = make("local", max_iter=3).fit(X[:64], y[:64], validation_data=(X[64:], y[64:]))
    assert len(est.validation_scores_) == 3
    assert all("validation_score" in h for h in est.history_)
    es = make("local", max_iter=30, early_stopping=True, n_iter_no_change=1).fit(
        X[:64], y[:64], validation_data=(X[64:], y[64:]))
    assert es.n_iter_ < 30 and es.best_validation_score_ == max(es.validation_scores_)
    # the best weights are restored: they score the best validation score
    assert es.score(X[64:], y[64:]) == pytest.approx(es.best_validation_score_)


def test_unknown_fit_parameters_and_metadata_routing():
    X, y, _ = data("local")
    with pytest.raises(TypeError, match="unexpected keyword arguments"):
        make("local").fit(X, y, soft_labels=None)
    with sklearn.config_context(enable_metadata_routing=True):
        routing = make("p2c").set_fit_request(soft_labels=True).get_metadata_routing()
        assert set(routing.fit.requests) == {"preferences", "soft_labels"}
        assert set(make("astr").get_metadata_routing().fit.requests) == {"scan_modes"}


def test_hook_docstring_lists_every_hook():
    doc = inspect.getdoc(BaseTorchEstimator)
    for hook in ("_build_module", "_get_dataset", "_init_module", "_training_phases",
                 "_train_losses", "_on_epoch_begin", "_on_epoch_end", "_forward",
                 "_validation_score", "_optimizer_params", "_distributed_units"):
        assert hook in doc and hasattr(BaseTorchEstimator, hook)
