"""The trainer's overhead: seconds per epoch of each estimator's ``fit`` against a plain torch loop.

For each of the four neural estimators the same run measures

* ``ours``: ``est.fit(X, y)``; an epoch is timed from one ``on_epoch_begin`` to the next (so
  everything the fit does per epoch counts: batching through the DataLoader, the model's own
  per-epoch work such as P2C's pair sampling, loss bookkeeping, history, callbacks);
* ``plain``: a hand-written loop over the **same module** (a copy of the estimator's module as
  its fit initialises it, taken in ``on_train_begin``), the same data as tensors, the same batch size,
  optimizer (Adam), learning-rate schedule (cosine per epoch) and loss: ``randperm``, slices,
  ``zero_grad``, forward, loss, ``backward``, ``step``. Where the model needs per-epoch work
  (P2C's partner sampling), the plain loop calls the same functions.

The first epoch of each is left out (warm-up, and the fit measures activation memory on its first
step); the median over the other epochs is taken, over ``--repeat`` pairs of runs whose order
alternates (ours then plain, plain then ours), and ``overhead = ours / plain - 1``. ``plain IQR``
(the interquartile range of the plain loop's epochs over its median) shows how much the machine
itself moves the timings: an overhead within it is not resolved. The one-time setup of ``fit`` (validation,
tokenising, building the module) is reported apart as ``setup s``. torch runs on one thread
(``--threads``); the comparison is a ratio measured in one run, on this machine.

Usage::

    python benchmarks/bench_training.py --quick            # about 1-2 minutes on 2 cores
    python benchmarks/bench_training.py --json benchmarks/results/bench_training.json
"""

import copy
import math
import os
import sys
import time
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from torch.nn import functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import git_revision, make_parser, print_table, pyplot, run_benchmark, write_json  # noqa: E402

from neural import ASTRSegmenter, DToPSegmenter, LocalLearningClassifier, P2CClassifier  # noqa: E402
from neural.callbacks import Callback  # noqa: E402
from neural.datasets import make_shapes  # noqa: E402
from neural.segmentation import make_segmentation  # noqa: E402
from neural.text import (  # noqa: E402
    consistency_loss,
    diversity_loss,
    make_preference_text,
    preference_loss,
    random_partners,
)
from neural.text._preferences import SoftLabelSource  # noqa: E402
from neural.video import astr_loss, make_clips, make_ultrasound_videos  # noqa: E402


class EpochClock(Callback):
    """Start time of every epoch and the end of the last one."""

    def on_train_begin(self, estimator, **kwargs):
        self.starts = []

    def on_epoch_begin(self, estimator, **kwargs):
        self.starts.append(time.perf_counter())

    def on_train_end(self, estimator, **kwargs):
        self.end = time.perf_counter()

    def epochs(self):
        marks = self.starts + [self.end]
        return np.diff(marks)


# ------------------------------------------------------------------------- the four setups
def local_setup(quick):
    n = 512 if quick else 2048
    X, y = make_shapes(n, image_size=16, random_state=0)
    est = LocalLearningClassifier(method="dgl", n_local_modules=4, backbone="resnet20", width=8,
                                  batch_size=64, device="cpu", random_state=0)

    def step(module, xb, yb):
        for k, loss in module.local_losses(xb, yb):
            loss.backward()
            module.after_backward(k)

    return est, X, y, {}, step, (torch.from_numpy(X), torch.from_numpy(y))


def dtop_setup(quick):
    n = 128 if quick else 512
    X, M = make_segmentation(n, image_size=32, random_state=0)
    # one phase (finetune_iter=0): the plain loop below times the unpruned training step
    est = DToPSegmenter(embed_dim=64, depth=6, num_heads=4, stage_ends=(2, 4), batch_size=32,
                        finetune_iter=0, device="cpu", random_state=0)

    def step(module, xb, yb):
        out = module(xb, p0=1.0, k=est.k)
        final = F.cross_entropy(module.upsample(out.logits), yb)
        aux = sum(F.cross_entropy(module.upsample(c), yb) for c in out.stage_logits[:-1])
        (final + est.aux_weight * aux).backward()

    return est, X, M, {}, step, (torch.from_numpy(X), torch.from_numpy(M))


def astr_setup(quick):
    n = 8 if quick else 24
    X, M, _ = make_ultrasound_videos(n, n_frames=8, image_size=32, random_state=0)
    est = ASTRSegmenter(3, scan_augment=False, batch_size=16, device="cpu", random_state=0)
    mean, std = float(X.mean()), float(X.std() + 1e-6)
    idx = make_clips(X.shape[1], 3)
    clips = np.concatenate([(v[idx][:, :, None] - mean) / std for v in X]).astype(np.float32)
    masks = np.concatenate([m[idx] for m in M]).astype(np.float32)

    def step(module, xb, yb):
        loss, _ = astr_loss(module(xb), yb, aux_weight=est.aux_weight,
                            dilation=est.body_dilation)
        loss.backward()

    return est, X, M, {}, step, (torch.from_numpy(clips), torch.from_numpy(masks))


def p2c_setup(quick):
    n = 1200 if quick else 4000
    d = make_preference_text(n, 3, random_state=0)
    est = P2CClassifier(batch_size=32, device="cpu", random_state=0)
    labels = np.searchsorted(np.unique(d.y), d.y)
    source = SoftLabelSource(d.soft_labels, labels, est.tie_tol)
    rng = np.random.RandomState(0)
    state = {}

    def epoch(module, ids):
        cand, pref = source.candidates(np.ones(len(labels), bool), est.n_candidates, rng)
        partner = random_partners(cand, rng)
        col = np.argmax(cand == partner[:, None], axis=1)
        state["partner"] = torch.from_numpy(partner)
        state["pref"] = torch.from_numpy(np.where(
            partner >= 0, pref[np.arange(len(partner)), col], 0.5).astype(np.float32))

    def step(module, xb, yb, rows, ids):
        h1 = module.encode(xb)
        logits = module.classify(h1)
        total = F.cross_entropy(logits, yb)
        partner, pref = state["partner"][rows], state["pref"][rows]
        has = partner >= 0
        if bool(has.any()):
            lab, p = yb[has], pref[has]
            h2 = module.encode(ids[partner[has]])
            r1, r2 = module.preference_scores(h1[has], lab), module.preference_scores(h2, lab)
            ar = torch.arange(len(lab))
            p1 = torch.softmax(logits[has], 1)[ar, lab]
            p2 = torch.softmax(module.classify(h2), 1)[ar, lab]
            total = (total + est.lambda_pref * preference_loss(r1, r2, p)
                     - est.lambda_div * diversity_loss(r1, r2)
                     + est.lambda_cons * consistency_loss(p1, p2, p))
        total.backward()

    return est, d.texts, d.y, {"soft_labels": d.soft_labels}, (epoch, step), labels


SETUPS = {"LocalLearningClassifier (DGL, K=4)": local_setup, "DToPSegmenter": dtop_setup,
          "ASTRSegmenter": astr_setup, "P2CClassifier": p2c_setup}


# ---------------------------------------------------------------------------------- loops
def plain_loop(module, tensors, batch_size, epochs, lr, step, p2c_ids=None):
    """Per-epoch seconds of a hand-written loop (Adam, cosine schedule per epoch)."""
    torch.manual_seed(0)
    module.train()
    params = [p for p in module.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    epoch_work = None
    if isinstance(step, tuple):
        epoch_work, step = step
    X, y = tensors if p2c_ids is None else (p2c_ids, torch.from_numpy(tensors))
    n = len(y)
    times = []
    for e in range(epochs):
        start = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = 0.5 * lr * (1 + math.cos(math.pi * e / epochs))
        if epoch_work is not None:
            module.eval()
            epoch_work(module, X)
            module.train()
        order = torch.randperm(n)
        for a in range(0, n, batch_size):
            rows = order[a:a + batch_size]
            if len(rows) == 1:
                continue
            opt.zero_grad(set_to_none=True)
            if p2c_ids is None:
                step(module, X[rows], y[rows])
            else:
                step(module, X[rows], y[rows], rows, X)
            opt.step()
        times.append(time.perf_counter() - start)
    return np.asarray(times)


class _Initialised(Exception):
    """Raised by :class:`InitialModule` to end a fit as soon as its module exists."""


class InitialModule(Callback):
    """A copy of the module as the fit initialised it; the fit stops there."""

    def on_train_begin(self, estimator, **kwargs):
        self.module = copy.deepcopy(estimator.module_)
        raise _Initialised


def initial_module(est, X, y, fit_params):
    grab = InitialModule()
    try:
        est.set_params(callbacks=[grab]).fit(X, y, **fit_params)
    except _Initialised:
        return grab.module
    raise RuntimeError("the fit did not start")


def measure(name, setup, args):
    epochs = 4 if args.quick else 6
    ours_times, plain_times, setups = [], [], []
    for rep in range(args.repeat):
        est, X, y, fit_params, step, tensors = setup(args.quick)
        module = initial_module(est, X, y, fit_params)
        clock = EpochClock()
        est.set_params(max_iter=epochs, callbacks=[clock])

        def ours():
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                est.fit(X, y, **fit_params)
            per_epoch = clock.epochs()
            setups.append(time.perf_counter() - t0 - per_epoch.sum())
            ours_times.append(per_epoch[1:])

        def plain():
            p2c_ids = None
            if isinstance(est, P2CClassifier):  # the token ids the estimator trains on
                p2c_ids = torch.from_numpy(est._validate(X, reset=False)[0]["x"])
            plain_times.append(plain_loop(copy.deepcopy(module), tensors, est.batch_size,
                                          epochs, est.learning_rate_init, step, p2c_ids)[1:])

        # alternate which goes first, so that drifts of the shared machine cancel
        for run in ((ours, plain) if rep % 2 == 0 else (plain, ours)):
            run()
    ours_all, plain_all = np.concatenate(ours_times), np.concatenate(plain_times)
    ours, plain = float(np.median(ours_all)), float(np.median(plain_all))
    q75, q25 = np.percentile(plain_all, [75, 25])
    return {"method": name, "dataset": "synthetic", "n_samples": len(X),
            "batch_size": est.batch_size, "epochs": epochs, "repeats": args.repeat,
            "ours_s_per_epoch": ours, "plain_s_per_epoch": plain,
            "overhead": ours / plain - 1, "plain_spread": float((q75 - q25) / plain),
            "setup_s": float(np.median(setups))}


def plot(rows, out):
    plt = pyplot()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(8, 3.6))
    names = [r["method"] for r in rows]
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r["ours_s_per_epoch"] for r in rows], 0.4, label="fit (trainer)")
    ax.bar(x + 0.2, [r["plain_s_per_epoch"] for r in rows], 0.4, label="plain torch loop")
    for i, r in enumerate(rows):
        ax.annotate(f"{100 * r['overhead']:+.1f}%", (i, max(r["ours_s_per_epoch"],
                                                            r["plain_s_per_epoch"])),
                    ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, [n.split(" (")[0] for n in names], fontsize=8)
    ax.set_ylabel("seconds per epoch")
    ax.set_title("trainer overhead, same module, data and batch size")
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "bench_training.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def run(args):
    torch.set_num_threads(max(1, args.threads))
    rows = [measure(name, setup, args) for name, setup in SETUPS.items()]
    print_table(rows, [
        ("method", "estimator", "s"), ("n_samples", "n", "d"), ("batch_size", "batch", "d"),
        ("ours_s_per_epoch", "fit s/epoch", ".4f"), ("plain_s_per_epoch", "plain s/epoch", ".4f"),
        ("overhead", "overhead", "+.1%"), ("plain_spread", "plain IQR", ".1%"),
        ("setup_s", "setup s", ".3f"),
    ], title=f"\nTrainer overhead ({'quick' if args.quick else 'full'}; median of epochs 2.. over "
             f"{args.repeat} alternating runs; torch threads {args.threads})")
    path = plot(rows, args.out)
    if path:
        print(f"plot: {path}")
    if args.json:
        write_json(args.json, "bench_training", rows, args,
                   extra={"revision": git_revision(), "torch": torch.__version__,
                          "torch_threads": args.threads})
        print(f"json: {args.json}")


def main(argv=None):
    parser = make_parser(__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=None,
                        help="alternating fits per estimator (default 2 quick, 4 full)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")

    def go(args):
        if args.repeat is None:
            args.repeat = 2 if args.quick else 4
        run(args)

    run_benchmark(go, __doc__.splitlines()[0], argv, parser)


if __name__ == "__main__":
    main()
