"""One process of the distributed tests, launched by ``torchrun --nproc_per_node=2`` (gloo).

Usage: ``_ddp_worker.py OUT MODE`` where MODE is

``fits``
    Batch norm over shares of a fixed batch, every case of ``_ddp_cases``
    (weights, predictions and records of every process in ``OUT``), then a
    fit with ``distributed="off"`` on different data per process, then a fit
    given different data per process (which must fail in every process).
``fail``
    A fit whose process of rank 1 raises after epoch 1; the other process
    must be stopped with the error, not hang.
``nodes``
    The ``p2c`` case only, written as ``nodes_p2c_rank*``: launched as 2
    "machines" of 1 process each (``torchrun --nnodes=2``).
"""

import json
import os
import sys

import numpy as np
import torch
import torch.distributed as dist

from _ddp_cases import CASES, fit, predictions, sync_bn_batch, weights
from _small import data, make
from neural._syncbn import CPUSyncBatchNorm
from neural.callbacks import Callback, Checkpoint, CSVLogger, ProgressBar

torch.set_num_threads(1)


def check_sync_bn(out, rank, world):
    # the estimators initialise the group themselves; this check runs first, so do it here
    if not dist.is_initialized():
        dist.init_process_group("gloo")
    x, grad = sync_bn_batch()
    lo, hi = rank * len(x) // world, (rank + 1) * len(x) // world
    bn = CPUSyncBatchNorm(3)
    xs = x[lo:hi].clone().requires_grad_(True)
    y = bn(xs)
    y.backward(grad[lo:hi])
    np.savez(os.path.join(out, f"syncbn_rank{rank}.npz"), y=y.detach().numpy(),
             dx=xs.grad.numpy(), dw=bn.weight.grad.numpy(), db=bn.bias.grad.numpy(),
             running_mean=bn.running_mean.numpy(), running_var=bn.running_var.numpy())


def run_cases(out, rank, cases=tuple(CASES), prefix=""):
    for case in cases:
        callbacks, bar = [], None
        if case == "local":  # writers: only rank 0's paths may appear, only rank 0's bar fills
            bar = open(os.path.join(out, f"bar_rank{rank}.txt"), "w")
            callbacks = [Checkpoint(os.path.join(out, f"ckpt_rank{rank}"), every=1),
                         CSVLogger(os.path.join(out, f"log_rank{rank}.csv")),
                         ProgressBar(file=bar)]
        est, X = fit(case, rank=1, callbacks=callbacks)
        if bar is not None:
            bar.close()
        name = f"{prefix}{case}_rank{rank}"
        np.savez(os.path.join(out, f"{name}.npz"), proba=predictions(est, X), **weights(est))
        with open(os.path.join(out, f"{name}.json"), "w") as f:
            json.dump({"n_iter": est.n_iter_, "loss_curve": est.loss_curve_}, f)
        est.save(os.path.join(out, f"{prefix}{case}_saved_rank{rank}.pt"))  # rank 0 writes


def run_off(out, rank):
    # distributed="off": each process trains alone, on data of its own size
    X, y, _ = data("local")
    n = 48 + 16 * rank
    est = make("local", max_iter=1, distributed="off").fit(X[:n], y[:n])
    with open(os.path.join(out, f"off_rank{rank}.json"), "w") as f:
        json.dump({"n_iter": est.n_iter_}, f)


def run_mismatch(out, rank):
    X, y, _ = data("local")
    n = 48 + 16 * rank
    try:
        make("local", max_iter=1).fit(X[:n], y[:n])
        message = None
    except ValueError as exc:
        message = str(exc)
    with open(os.path.join(out, f"mismatch_rank{rank}.json"), "w") as f:
        json.dump({"error": message}, f)


class FailOnRank1(Callback):
    def on_epoch_end(self, estimator, **kwargs):
        if kwargs["trainer"].rank == 1:
            raise RuntimeError("rank 1 failed on purpose")


def main():
    out, mode = sys.argv[1], sys.argv[2]
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    if mode == "fits":
        check_sync_bn(out, rank, world)
        run_cases(out, rank)
        run_off(out, rank)
        run_mismatch(out, rank)
    elif mode == "nodes":
        run_cases(out, rank, cases=("p2c",), prefix="nodes_")
    elif mode == "fail":
        X, y, fit_params = data("p2c")
        make("p2c", max_iter=3, callbacks=[FailOnRank1()]).fit(X, y, **fit_params)
    else:
        raise ValueError(f"unknown mode {mode!r}")
    with open(os.path.join(out, f"done_rank{rank}"), "w") as f:
        f.write("ok")


if __name__ == "__main__":
    main()
