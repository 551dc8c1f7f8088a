"""The distributed fits of the tests: cases shared by the torchrun worker and the test process.

Every case is fitted twice on the same data: by 2 processes (``_ddp_worker.py``
under torchrun, gloo backend) and by one (the test process); the fits must agree.
SGD, because Adam turns the rounding noise of parameters whose true gradient is
zero (a bias before batch norm, attention's key bias) into steps of the size of
the learning rate, which hides nothing but makes weights incomparable.
"""

import numpy as np
import torch

from _small import ArrayPairs, data, make
from neural.callbacks import Callback

CASES = {
    # MAN on 2 gradient-isolated modules (one DDP wrapper each, batch norm over the global
    # batch, EMA after module 0's backward); Dataset input; 96 samples in batches of 35, so
    # the processes' shares differ in size (17 / 18, then 13 / 13)
    "local": {"name": "local", "params": {"solver": "sgd", "batch_size": 35, "max_iter": 2},
              "dataset": True},
    # both phases (fine-tuning prunes tokens); validation split scored in shares and gathered
    "dtop": {"name": "dtop", "params": {"solver": "sgd", "batch_size": 7, "max_iter": 1,
                                        "finetune_iter": 1, "early_stopping": True,
                                        "validation_fraction": 0.25}},
    # the process of rank 1 alone asks to stop after epoch 2: both stop
    "astr": {"name": "astr", "params": {"solver": "sgd", "max_iter": 3}, "stop_at": 2},
    # pairs sampled from the model's outputs after epoch 1, broadcast from rank 0
    "p2c": {"name": "p2c", "params": {"solver": "sgd", "learning_rate_init": 0.05,
                                      "dropout": 0.0, "max_iter": 2}},
}


class StopAt(Callback):
    """Stop the phase after ``epoch``, asked in the process of ``rank`` only."""

    def __init__(self, epoch, rank):
        self.epoch, self.rank = epoch, rank

    def on_epoch_end(self, estimator, **kwargs):
        trainer = kwargs["trainer"]
        if trainer.rank == self.rank and kwargs["epoch"] == self.epoch:
            trainer.should_stop = True


def fit(case, rank=0, callbacks=()):
    """Fit ``case``; ``rank`` is the process that asks to stop (``stop_at`` cases).

    Returns
    -------
    est : BaseTorchEstimator
        The fitted estimator.
    X : object
        Its training input (to predict on).
    """
    spec = CASES[case]
    X, y, fit_params = data(spec["name"])
    extra = list(callbacks)
    if "stop_at" in spec:
        extra.append(StopAt(spec["stop_at"], rank))
    est = make(spec["name"], callbacks=extra or None, **spec["params"])
    source = ArrayPairs(X, y) if spec.get("dataset") else X
    est.fit(source, None if spec.get("dataset") else y, **fit_params)
    return est, X


def predictions(est, X):
    """The estimator's probabilities for ``X`` (float64)."""
    return np.asarray(est.predict_proba(X), dtype=np.float64)


def weights(est):
    """Floating-point weights and statistics of the module, as float64 arrays."""
    return {k: v.detach().double().numpy() for k, v in est.module_.state_dict().items()
            if v.is_floating_point()}


def sync_bn_batch():
    """A fixed batch (8, 3, 4, 4) with a non-zero mean, and the upstream gradient."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 3, 4, 4, generator=g) * 2 + 1
    return x, torch.randn(8, 3, 4, 4, generator=g)
