"""Each callback does what it says; optimizers by class or name."""

import csv
import io
import json
import pickle

import numpy as np
import pytest
import torch

from _small import data, make
from neural import LocalLearningClassifier
from neural.callbacks import (
    Callback,
    Checkpoint,
    CSVLogger,
    EarlyStopping,
    JSONLinesLogger,
    LRScheduler,
    ProgressBar,
)


@pytest.fixture(scope="module")
def shapes():
    X, y, _ = data("local")
    return X, y


def small(**params):
    return make("local", method="dgl", **params)


class Snapshots(Callback):
    """Copies of the weights after every epoch."""

    def __init__(self):
        self.states = {}

    def on_epoch_end(self, estimator, **kwargs):
        self.states[kwargs["epoch"]] = {k: v.clone() for k, v in
                                        estimator.module_.state_dict().items()}


def test_early_stopping_stops_and_restores_the_best_weights(shapes):
    X, y = shapes
    # every epoch after the first fails to improve by tol: the phase stops after patience=2
    stop = EarlyStopping("loss", patience=2, tol=1e9)
    est = small(max_iter=10, callbacks=[stop]).fit(X, y)
    assert est.n_iter_ == 3 and stop.stopped_epoch_ == 3
    # the best value is the exact best, whether or not it beat the previous one by tol
    assert stop.best_ == min(est.loss_curve_)
    assert stop.best_epoch_ == 1 + int(np.argmin(est.loss_curve_))
    # restore_best: the weights after training are those of the best epoch of a score
    snaps = Snapshots()
    best = EarlyStopping("validation_score", patience=3, restore_best=True)
    est = small(max_iter=6, learning_rate_init=0.05, callbacks=[best, snaps]).fit(
        X[:64], y[:64], validation_data=(X[64:], y[64:]))
    assert best.best_ == max(est.validation_scores_)
    for key, value in est.module_.state_dict().items():
        assert torch.equal(value, snaps.states[best.best_epoch_][key])
    with pytest.raises(ValueError, match="monitors 'validation_score'"):
        small(max_iter=2, callbacks=[EarlyStopping("validation_score")]).fit(X, y)


def test_checkpoint_writes_best_and_every_n_epochs(shapes, tmp_path):
    X, y = shapes
    ckpt = Checkpoint(tmp_path / "run", every=2)
    est = small(max_iter=4, callbacks=[ckpt]).fit(X, y)
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert "epoch_0002.pt" in names and "epoch_0004.pt" in names and "best.pt" in names
    assert ckpt.best_ == min(est.loss_curve_)
    best = LocalLearningClassifier.load(tmp_path / "run" / "best.pt")
    assert best.n_iter_ == ckpt.best_epoch_ and best.loss_curve_[-1] == ckpt.best_
    second = LocalLearningClassifier.load(tmp_path / "run" / "epoch_0002.pt")
    assert second.loss_curve_ == est.loss_curve_[:2]
    # a checkpoint continues the fit: resuming from epoch 2 gives the 4-epoch model
    resumed = small(max_iter=4).fit(X, y, resume_from=tmp_path / "run" / "epoch_0002.pt")
    np.testing.assert_array_equal(resumed.predict_proba(X), est.predict_proba(X))


def test_lr_scheduler_any_torch_schedule(shapes):
    X, y = shapes
    step = small(max_iter=3, learning_rate_init=0.04,
                 callbacks=[LRScheduler("steplr", step_size=1, gamma=0.5)]).fit(X, y)
    # it replaces the built-in cosine schedule
    assert [h["lr"] for h in step.history_] == pytest.approx([0.04, 0.02, 0.01])
    cosine = small(max_iter=3, learning_rate_init=0.04).fit(X, y)
    assert [h["lr"] for h in cosine.history_] == pytest.approx([0.04, 0.03, 0.01])
    constant = small(max_iter=3, learning_rate="constant", learning_rate_init=0.04).fit(X, y)
    assert [h["lr"] for h in constant.history_] == [0.04] * 3
    one_cycle = LRScheduler(torch.optim.lr_scheduler.OneCycleLR, step_every="batch")
    small(max_iter=2, callbacks=[one_cycle]).fit(X, y)
    assert one_cycle.scheduler_.last_epoch == 2 * int(np.ceil(len(X) / 32))
    plateau = LRScheduler("ReduceLROnPlateau", monitor="loss", factor=0.1, patience=0,
                          threshold=1e9)
    est = small(max_iter=3, learning_rate_init=0.04, callbacks=[plateau]).fit(X, y)
    assert [h["lr"] for h in est.history_] == pytest.approx([0.04, 0.004, 0.0004])
    with pytest.raises(ValueError, match="not a class of torch.optim.lr_scheduler"):
        LRScheduler("cosine")
    with pytest.raises(ValueError, match="could not build StepLR"):
        small(max_iter=1, callbacks=[LRScheduler("StepLR")]).fit(X, y)


def test_progress_bar_stays_and_verbose_adds_one(shapes, capsys):
    X, y = shapes
    out = io.StringIO()
    small(max_iter=3, callbacks=[ProgressBar(file=out, ascii=True)]).fit(X, y)
    text = out.getvalue()
    assert "LocalLearningClassifier" in text and "3/3" in text and "loss=" in text
    assert text.endswith("\n")  # the finished bar is left on its own line
    small(max_iter=1, verbose=1).fit(X, y)
    assert "LocalLearningClassifier" in capsys.readouterr().err


def test_loggers_write_the_history(shapes, tmp_path):
    X, y = shapes
    est = small(max_iter=3, callbacks=[CSVLogger(tmp_path / "h.csv"),
                                       JSONLinesLogger(tmp_path / "h.jsonl")]).fit(X, y)
    rows = list(csv.DictReader(open(tmp_path / "h.csv")))
    assert [float(r["loss"]) for r in rows] == pytest.approx(est.loss_curve_)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    lines = [json.loads(line) for line in open(tmp_path / "h.jsonl")]
    assert lines == json.loads(json.dumps(est.history_))
    # a warm-started fit continues both files
    est.set_params(warm_start=True, max_iter=1).fit(X, y)
    assert len(list(csv.DictReader(open(tmp_path / "h.csv")))) == 4
    assert len(open(tmp_path / "h.jsonl").read().splitlines()) == 4


class Boom(Callback):
    def __init__(self, hook):
        self.hook = hook

    def __getattribute__(self, name):
        if name == object.__getattribute__(self, "hook"):
            def fail(estimator, **kwargs):
                raise RuntimeError(f"boom in {name}")
            return fail
        return object.__getattribute__(self, name)


@pytest.mark.parametrize("hook", ["on_train_begin", "on_epoch_begin", "on_batch_end",
                                  "on_epoch_end", "on_train_end"])
def test_an_exception_in_a_callback_reaches_the_caller(shapes, hook):
    X, y = shapes
    with pytest.raises(RuntimeError, match=f"boom in {hook}"):
        small(max_iter=2, callbacks=[Boom(hook)]).fit(X, y)


class StopAfter(Callback):
    def __init__(self, epoch, fit):
        self.epoch, self.fit = epoch, fit

    def on_epoch_end(self, estimator, **kwargs):
        if kwargs["epoch"] == self.epoch:
            setattr(kwargs["trainer"], "stop_fit" if self.fit else "should_stop", True)


def test_a_callback_ends_a_phase_or_the_fit():
    X, y, _ = data("dtop")
    phase = make("dtop", max_iter=3, finetune_iter=2, callbacks=[StopAfter(1, False)]).fit(X, y)
    assert [h["pruned"] for h in phase.history_] == [0.0, 1.0, 1.0]
    whole = make("dtop", max_iter=3, finetune_iter=2, callbacks=[StopAfter(1, True)]).fit(X, y)
    assert whole.n_iter_ == 1


def test_callbacks_are_checked_and_the_fitted_estimator_pickles(shapes, tmp_path):
    X, y = shapes
    with pytest.raises(ValueError, match="'callbacks' parameter"):
        small(callbacks=[print]).fit(X, y)
    est = small(max_iter=1, callbacks=[ProgressBar(file=io.StringIO()),
                                       LRScheduler("StepLR", step_size=1)]).fit(X, y)
    clone = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(clone.predict_proba(X), est.predict_proba(X))
    est.save(tmp_path / "m.pt")  # callbacks are not saved
    assert LocalLearningClassifier.load(tmp_path / "m.pt").callbacks is None


# ---------------------------------------------------------------------------- optimizers
@pytest.mark.parametrize("solver, kwargs, cls", [
    ("adamw", {"betas": (0.8, 0.99)}, torch.optim.AdamW),
    ("RMSprop", {"alpha": 0.9}, torch.optim.RMSprop),
    (torch.optim.NAdam, None, torch.optim.NAdam),
    ("sgd", None, torch.optim.SGD),
])
def test_any_torch_optimizer_by_class_or_name(shapes, tmp_path, solver, kwargs, cls):
    X, y = shapes
    est = small(max_iter=1, solver=solver, optimizer_kwargs=kwargs).fit(X, y)
    assert type(est.optimizer_) is cls
    group = est.optimizer_.param_groups[0]
    assert group["weight_decay"] == est.weight_decay
    for key, value in (kwargs or {}).items():
        assert group[key] == value
    if cls is torch.optim.SGD:
        assert group["momentum"] == 0.9 and group["nesterov"]
    est.save(tmp_path / "m.pt")
    loaded = LocalLearningClassifier.load(tmp_path / "m.pt")
    assert loaded.get_params() == est.get_params() and type(loaded.optimizer_) is cls


def test_bad_optimizers(shapes):
    X, y = shapes
    with pytest.raises(ValueError, match="'solver' parameter"):
        small(solver="adamx").fit(X, y)
    with pytest.raises(ValueError, match="'solver' parameter"):
        small(solver="lbfgs").fit(X, y)
    with pytest.raises(ValueError, match="takes no weight_decay"):
        small(solver="rprop", weight_decay=0.1).fit(X, y)
    with pytest.raises(ValueError, match="rejected its arguments"):
        small(solver="adam", optimizer_kwargs={"moment": 0.5}).fit(X, y)
    with pytest.raises(ValueError, match="optimizer_kwargs"):
        small(optimizer_kwargs={"eps": float("nan")}).fit(X, y)
