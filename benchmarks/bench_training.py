"""Training cost of the neural estimators: trainer overhead, bfloat16 against float32, 1 against 2 processes.

Three parts (``--parts``, all by default), each over the four neural estimators.

**overhead**: seconds per epoch of each estimator's ``fit`` against a plain torch loop.
For each estimator the same run measures

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

**precision**: ``precision="32"`` against ``"bf16"`` (``torch.autocast`` with bfloat16) on the CPU.
Each fit runs in a fresh Python process, so that its peak resident memory is the process's own,
as a user measures it (Linux's ``VmHWM``: ``getrusage``'s ``ru_maxrss`` would also count this
script's memory, see ``_common.peak_rss_bytes``): ``peak RSS`` is that of the whole process (interpreter,
torch, data, fit), ``fit RSS`` how far the fit raised it above the resident memory just before
``fit``. Time is the median epoch after the first; the score is the
estimator's ``score`` on held-out data of the same generator (accuracy, mean IoU, Dice, accuracy).

**processes**: the same fit on 1 process and on 2 processes of 1 thread each under
``torchrun --standalone --nproc_per_node=2`` (DistributedDataParallel, gloo backend), with the
same global ``batch_size``. Time is rank 0's median epoch after the first. The 2-process model
must equal the 1-process one up to float rounding: ``max |dw|`` is the largest difference of a
weight (or batch-norm statistic) from the 1-process fit, ``max |dp|`` of a predicted
probability. How much rounding alone moves a fit is measured too: a 1-process fit whose weights
are multiplied by ``1 + 1e-7 * N(0, 1)`` after every step (about one float32 rounding, the row
``rounding reference``); training can amplify such differences (a ResNet-20 turns a 1e-7 change
of its initial weights into 3e-3 within one epoch), so the 2-process differences, which come
from sums taken in another order at every step, are to be read against that row. These fits use SGD (Adam turns the
rounding noise of parameters whose true gradient is zero, such as a bias before batch norm,
into steps of the size of the learning rate) and no dropout (each process draws its own masks).

Usage::

    python benchmarks/bench_training.py --quick            # about 5 minutes on 2 busy cores
    python benchmarks/bench_training.py --quick --parts precision,processes
    python benchmarks/bench_training.py --json benchmarks/results/bench_training.json
"""

import argparse
import copy
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from torch.nn import functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (  # noqa: E402
    fresh_process_env,
    git_revision,
    make_parser,
    peak_rss_bytes,
    print_table,
    proc_status,
    pyplot,
    run_benchmark,
    write_json,
)

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
SHORT = dict(zip(("local", "dtop", "astr", "p2c"), SETUPS))


def heldout(key, quick):
    """Test data of the same generator as the setup's training data (another seed)."""
    if key == "local":
        return make_shapes(512 if quick else 1024, image_size=16, random_state=1)
    if key == "dtop":
        return make_segmentation(64 if quick else 128, image_size=32, random_state=1)
    if key == "astr":
        X, M, _ = make_ultrasound_videos(4 if quick else 8, n_frames=8, image_size=32,
                                         random_state=1)
        return X, M
    d = make_preference_text(400 if quick else 1000, 3, random_state=1)
    return d.texts, d.y


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


# ------------------------------------------------------------- fresh-process workers
def _resident_bytes():
    """Resident memory of this process now."""
    now = proc_status("VmRSS")
    return peak_rss_bytes() if now is None else now


class Perturb(Callback):
    """After every step, multiply the weights by ``1 + eps * N(0, 1)``: rounding-sized changes."""

    def __init__(self, eps):
        self.eps = eps
        self.generator = torch.Generator().manual_seed(1)

    def on_batch_end(self, estimator, **kwargs):
        with torch.no_grad():
            for p in estimator.module_.parameters():
                p.mul_(1 + self.eps * torch.randn(p.shape, generator=self.generator))


# settings of the 1-vs-2-process fits (see the module docstring)
PROCESS_PARAMS = {"solver": "sgd", "learning_rate_init": 0.01}


def worker(args):
    """One fit in this (fresh) process; under torchrun, one process of a distributed fit."""
    torch.set_num_threads(max(1, args.threads))
    est, X, y, fit_params, _, _ = SETUPS[SHORT[args.estimator]](args.quick)
    clock = EpochClock()
    params = {"max_iter": args.epochs, "precision": args.precision, "callbacks": [clock]}
    if args.part == "processes":
        params.update(PROCESS_PARAMS)
        if isinstance(est, P2CClassifier):
            params["dropout"] = 0.0
    if args.perturb:
        params["callbacks"] = [clock, Perturb(args.perturb)]
    est.set_params(**params)
    before = _resident_bytes()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y, **fit_params)
    seconds = time.perf_counter() - start
    peak = peak_rss_bytes()  # before scoring, which allocates too
    rank = int(os.environ.get("RANK", "0"))
    result = {"epoch_s": float(np.median(clock.epochs()[1:])), "fit_s": seconds,
              "peak_rss": peak, "fit_rss": max(0, peak - before), "n_iter": est.n_iter_,
              "world_size": int(os.environ.get("WORLD_SIZE", "1"))}
    if args.save:  # predictions on some training inputs, and every weight
        Xs = X[:64] if not isinstance(est, P2CClassifier) else X[:256]
        np.savez(os.path.join(args.save, f"rank{rank}.npz"), proba=np.asarray(
            est.predict_proba(Xs), dtype=np.float64),
            **{f"w/{k}": v.detach().double().numpy() for k, v in est.module_.state_dict().items()
               if v.is_floating_point()})
    if args.part == "precision":
        Xt, yt = heldout(args.estimator, args.quick)
        result["score"] = float(est.score(Xt, yt))
    if rank == 0:
        with open(args.result, "w") as f:
            json.dump(result, f)


def _launch(args, key, extra, nproc=None, threads=None, timeout=1200):
    """Run :func:`worker` in a fresh process (or ``nproc`` under torchrun); its result dict."""
    with tempfile.TemporaryDirectory() as tmp:
        result = os.path.join(tmp, "result.json")
        flags = ["--worker", "--estimator", key, "--result", result,
                 "--threads", str(threads or args.threads), *extra]
        if args.quick:
            flags.append("--quick")
        script = os.path.abspath(__file__)
        if nproc is None:
            cmd = [sys.executable, script, *flags]
        else:
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc_per_node={nproc}", script, *flags]
        env = {k: v for k, v in fresh_process_env(threads or args.threads).items()
               if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}"
                               f"{proc.stderr[-3000:]}")
        with open(result) as f:
            return json.load(f)


def precision_rows(args):
    epochs = 4 if args.quick else 8
    rows = []
    for key, name in SHORT.items():
        for precision in ("32", "bf16"):
            r = _launch(args, key, ["--part", "precision", "--precision", precision,
                                    "--epochs", str(epochs)])
            rows.append({"part": "precision", "method": name, "dataset": "synthetic",
                         "precision": precision, "epochs": epochs, "s_per_epoch": r["epoch_s"],
                         "score": r["score"], "peak_rss_mib": r["peak_rss"] / 2**20,
                         "fit_rss_mib": r["fit_rss"] / 2**20})
        fp32, bf16 = rows[-2], rows[-1]
        bf16["time_vs_fp32"] = bf16["s_per_epoch"] / fp32["s_per_epoch"]
        bf16["score_vs_fp32"] = bf16["score"] - fp32["score"]
    return rows


def process_rows(args):
    epochs = 3 if args.quick else 5
    rows = []
    for key, name in SHORT.items():
        base = ["--part", "processes", "--epochs", str(epochs)]
        with tempfile.TemporaryDirectory() as tmp:
            dirs = {s: os.path.join(tmp, str(i)) for i, s in enumerate(
                ("1 process", "2 processes", "rounding reference"))}
            for d in dirs.values():
                os.makedirs(d)
            runs = {
                "1 process": _launch(args, key, base + ["--save", dirs["1 process"]]),
                "2 processes": _launch(args, key, base + ["--save", dirs["2 processes"]],
                                       nproc=2),
                "rounding reference": _launch(args, key, base + [
                    "--save", dirs["rounding reference"], "--perturb", "1e-7"]),
            }
            saved = {s: dict(np.load(os.path.join(d, "rank0.npz"))) for s, d in dirs.items()}
            rank1 = dict(np.load(os.path.join(dirs["2 processes"], "rank1.npz")))
        ref = saved["1 process"]
        weights = [k for k in ref if k.startswith("w/")]
        for setup, r in runs.items():
            row = {"part": "processes", "method": name, "dataset": "synthetic", "setup": setup,
                   "epochs": epochs, "s_per_epoch": r["epoch_s"]}
            if setup != "rounding reference":
                row["speedup"] = runs["1 process"]["epoch_s"] / r["epoch_s"]
            if setup != "1 process":
                other = saved[setup]
                row["max_dw"] = max(float(np.max(np.abs(other[k] - ref[k]), initial=0.0))
                                    for k in weights)
                row["max_dp"] = float(np.max(np.abs(other["proba"] - ref["proba"])))
            if setup == "2 processes":
                row["ranks_equal"] = str(all(np.array_equal(other[k], rank1[k]) for k in other))
            rows.append(row)
    return rows


# ------------------------------------------------------------------------------- output
def plot(rows, out):
    plt = pyplot()
    if plt is None:
        return None
    parts = [p for p in ("overhead", "precision", "processes") if any(r["part"] == p for r in rows)]
    fig, axes = plt.subplots(1, len(parts), figsize=(6 * len(parts), 3.8), squeeze=False)
    for ax, part in zip(axes[0], parts):
        sel = [r for r in rows if r["part"] == part]
        names = list(dict.fromkeys(r["method"].split(" (")[0] for r in sel))
        x = np.arange(len(names))
        if part == "overhead":
            bars = [("fit (trainer)", [r["ours_s_per_epoch"] for r in sel]),
                    ("plain torch loop", [r["plain_s_per_epoch"] for r in sel])]
            ax.set_title("trainer overhead, same module, data and batch size")
        elif part == "precision":
            bars = [(f"precision={p}", [r["s_per_epoch"] for r in sel if r["precision"] == p])
                    for p in ("32", "bf16")]
            ax.set_title("float32 vs bfloat16 autocast (CPU)")
        else:
            setups = ["1 process", "2 processes"]
            bars = [(s, [r["s_per_epoch"] for r in sel if r["setup"] == s]) for s in setups]
            ax.set_title("1 vs 2 processes (DDP, gloo), same global batch")
        width = 0.8 / len(bars)
        for j, (label, values) in enumerate(bars):
            ax.bar(x + (j - (len(bars) - 1) / 2) * width, values, width, label=label)
        ax.set_xticks(x, names, fontsize=8)
        ax.set_ylabel("seconds per epoch")
        ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "bench_training.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def run(args):
    torch.set_num_threads(max(1, args.threads))
    print(f"load average at start (1, 5, 15 min): {os.getloadavg()}; {os.cpu_count()} cores")
    rows = []
    if "overhead" in args.parts:
        overhead = [{"part": "overhead", **measure(name, setup, args)}
                    for name, setup in SETUPS.items()]
        print_table(overhead, [
            ("method", "estimator", "s"), ("n_samples", "n", "d"), ("batch_size", "batch", "d"),
            ("ours_s_per_epoch", "fit s/epoch", ".4f"),
            ("plain_s_per_epoch", "plain s/epoch", ".4f"),
            ("overhead", "overhead", "+.1%"), ("plain_spread", "plain IQR", ".1%"),
            ("setup_s", "setup s", ".3f"),
        ], title=f"\nTrainer overhead ({'quick' if args.quick else 'full'}; median of epochs 2.. "
                 f"over {args.repeat} alternating runs; torch threads {args.threads})")
        rows += overhead
    if "precision" in args.parts:
        precision = precision_rows(args)
        print_table(precision, [
            ("method", "estimator", "s"), ("precision", "precision", "s"),
            ("s_per_epoch", "s/epoch", ".4f"), ("time_vs_fp32", "time vs fp32", ".2f"),
            ("score", "score", ".4f"), ("score_vs_fp32", "score - fp32", "+.4f"),
            ("peak_rss_mib", "peak RSS MiB", ".0f"), ("fit_rss_mib", "fit RSS MiB", ".0f"),
        ], title=f"\nfloat32 vs bfloat16 autocast on the CPU (fresh process per fit; torch "
                 f"threads {args.threads})")
        rows += precision
    if "processes" in args.parts:
        processes = process_rows(args)
        print_table(processes, [
            ("method", "estimator", "s"), ("setup", "setup", "s"),
            ("s_per_epoch", "s/epoch", ".4f"), ("speedup", "speedup", ".2f"),
            ("max_dw", "max |dw|", ".1e"), ("max_dp", "max |dp|", ".1e"),
            ("ranks_equal", "ranks equal", "s"),
        ], title="\n1 vs 2 processes on the CPU (DDP, gloo; same global batch; SGD; differences "
                 "from the 1-process fit)")
        rows += processes
    path = plot(rows, args.out)
    if path:
        print(f"plot: {path}")
    if args.json:
        write_json(args.json, "bench_training", rows, args,
                   extra={"revision": git_revision(), "torch": torch.__version__,
                          "torch_threads": args.threads, "cpu_count": os.cpu_count(),
                          "load_average_at_end": list(os.getloadavg())})
        print(f"json: {args.json}")


PARTS = ("overhead", "precision", "processes")


def _parts(text):
    parts = [p.strip() for p in text.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown or not parts:
        raise ValueError(f"--parts takes a comma-separated list of {', '.join(PARTS)}; "
                         f"got {text!r}.")
    return parts


def main(argv=None):
    parser = make_parser(__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=None,
                        help="alternating fits per estimator (default 2 quick, 4 full)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--parts", type=_parts, default=list(PARTS),
                        help="comma-separated parts to run: " + ", ".join(PARTS))
    # the fresh processes of the precision and processes parts (internal)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--estimator", choices=list(SHORT), help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="32", help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=4, help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--save", help=argparse.SUPPRESS)
    parser.add_argument("--perturb", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--part", choices=PARTS[1:], help=argparse.SUPPRESS)

    def go(args):
        if args.worker:
            worker(args)
            return
        if args.repeat is None:
            args.repeat = 2 if args.quick else 4
        run(args)

    run_benchmark(go, __doc__.splitlines()[0], argv, parser)


if __name__ == "__main__":
    main()
