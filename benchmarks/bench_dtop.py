"""DToP: mIoU and FLOPs of dynamic token pruning against unpruned controls with the same budget.

Two synthetic data sets (``make_segmentation``): ``shapes`` (the generator's defaults, 4
classes, mostly flat background) and ``shapes-hard`` (8 classes, up to 5 shapes, noise 0.15:
less background, lower confidence, more hard tokens). Same seed, one run.

Default run (what a user of ``DToPSegmenter()``'s defaults gets), per data set:

* ``unpruned``: step 1 alone, ``max_iter`` epochs without pruning, predicting with p0 = 1.
* ``prediction only``: the same weights pruned at prediction over a sweep of p0
  (``finetune_iter=0``, the old default).
* ``control, one phase``: the unpruned model trained ``max_iter + finetune_iter`` epochs in
  one schedule: the same budget as the recipe.
* ``control, two phases``: the recipe's two phases with p0 = 1, i.e. the fine-tuning epochs
  spent without pruning at the same restarted learning rate.
* ``dtop (defaults)``: ``DToPSegmenter()``'s recipe (step 1, then ``finetune_iter`` epochs
  with pruning at ``p0`` active, at ``finetune_learning_rate``), evaluated over the sweep.

``--sweep`` measures what chose those defaults: from one step-1 checkpoint per data set, the
fine-tuning length x learning rate x p0 grid, each against the two controls with the same
fine-tuning length (the two-phase control also at the same learning rate).

FLOPs are the analytic per-image counts of the estimator's report (matrix products: patch
embedding, blocks, heads; checked against ``torch.utils.flop_counter`` in the tests). The
paper's headline (SegViT on ADE20K / Pascal Context / COCO-Stuff) is 20-35% fewer GFLOPs at
no mIoU loss. Plots: mIoU vs GFLOPs, and for a few test images which tokens exited at which
stage.
"""

import copy
import os
import sys
import tempfile
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import blas_threads, make_parser, write_json  # noqa: E402

DATASETS = {
    "shapes": {},
    "shapes-hard": dict(n_classes=8, max_shapes=5, noise=0.15),
}
SWEEP_P0 = [1.0, 0.99, 0.97, 0.95, 0.9, 0.8]
# the grid of --sweep: fine-tuning epochs, learning rate (fraction of learning_rate_init), p0
GRID_EPOCHS = (5, 10, 20)
GRID_LR = (0.1, 0.3, 1.0)
GRID_P0 = (0.9, 0.95, 0.97, 0.99)


def _model_params(args):
    return dict(patch_size=4, embed_dim=64, depth=6, num_heads=4, stage_ends=(2, 4), k=5,
                batch_size=32, learning_rate_init=1e-3, random_state=args.seed, device="cpu")


def _data(name, args):
    from neural.segmentation import make_segmentation

    n_train, n_test = (300, 150) if args.quick else (800, 300)
    kw = DATASETS[name]
    X, M = make_segmentation(n_train, image_size=32, random_state=args.seed, **kw)
    Xt, Mt = make_segmentation(n_test, image_size=32, random_state=args.seed + 1, **kw)
    return X, M, Xt, Mt, kw.get("n_classes", 4)


def _save_after_step1(path):
    """Callback: save the estimator when step 1 ends, then end the fit (a step-1 checkpoint)."""
    from neural.callbacks import Callback

    class SaveAfterStep1(Callback):
        order = 60

        def on_phase_end(self, estimator, phase, trainer, **kwargs):
            if phase.name == "train":
                estimator.save(path)
                trainer.stop_fit = True

    return SaveAfterStep1()


def _fit_step1(params, X, M, e1, path):
    """Step 1 only (no pruning), saved to ``path``; ``finetune_iter`` is set so the file's
    phases match the fine-tuning fits that resume from it."""
    from neural.segmentation import DToPSegmenter

    return DToPSegmenter(p0=1.0, max_iter=e1, finetune_iter=1, callbacks=[_save_after_step1(path)],
                         **params).fit(X, M)


def _step1(args, name, seed, params, X, M, e1, tmp):
    """The step-1 checkpoint of a data set and seed: trained into ``tmp``, or with
    ``--step1-dir`` kept in (and reused from) that folder. Returns its path and the model."""
    from neural.segmentation import DToPSegmenter

    folder = args.step1_dir or tmp
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{name}_seed{seed}_e{e1}{'_quick' * args.quick}.pt")
    if os.path.exists(path):
        return path, DToPSegmenter.load(path)
    return path, _fit_step1(params, X, M, e1, path)


def _finetune(params, X, M, e1, path, epochs, lr, p0):
    """Resume the step-1 checkpoint and fine-tune ``epochs`` epochs at ``lr`` with pruning at p0."""
    from neural.segmentation import DToPSegmenter

    est = DToPSegmenter(p0=p0, max_iter=e1, finetune_iter=epochs, finetune_learning_rate=lr,
                        **params)
    return est.fit(X, M, resume_from=path)


def _evaluate(est, Xt, Mt, p0, n_classes, repeats=3):
    from neural.segmentation import mean_iou

    est = copy.copy(est).set_params(p0=p0)
    seconds = []
    for _ in range(repeats):  # best of 3: the machine is shared
        start = time.perf_counter()
        pred, rep = est.predict(Xt, return_report=True)
        seconds.append(time.perf_counter() - start)
    return {"miou": mean_iou(Mt, pred, labels=np.arange(n_classes)),
            "gflops_per_image": float(rep.flops.mean() / 1e9),
            "flops_saved": 1.0 - float(rep.flops.mean()) / rep.flops_unpruned,
            "tokens_per_stage": [round(float(v), 1) for v in rep.tokens_active.mean(0)],
            "pruned_fraction": rep.pruned_fraction,
            "seconds": min(seconds)}, pred, rep


# ------------------------------------------------------------------ default run
def run(args):
    import torch

    from neural.segmentation import DToPSegmenter

    torch.set_num_threads(max(1, args.blas_threads))
    defaults = DToPSegmenter()
    e1 = 20 if args.quick else defaults.max_iter
    e2 = 5 if args.quick else defaults.finetune_iter
    p0 = defaults.p0
    lr_ft = defaults._training_phases()[1].learning_rate  # the estimator's own rule
    print(f"DToPSegmenter defaults: p0={p0}, max_iter={defaults.max_iter}, finetune_iter="
          f"{defaults.finetune_iter}, fine-tuning learning rate {lr_ft:g}; this run: step 1 {e1} "
          f"epochs, step 2 {e2} epochs. ViT patch 4 (64 tokens of 32x32 images), dim 64, depth 6, "
          "stages 1-2 | 3-4 | 5-6, k=5.", flush=True)
    rows, figures = [], {}
    for name in args.datasets:
        X, M, Xt, Mt, n_classes = _data(name, args)
        params = _model_params(args)
        print(f"\n[{name}] {len(X)} train / {len(Xt)} test images, {n_classes} classes, "
              f"{100 * (M == 0).mean():.0f}% background pixels", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            path, base = _step1(args, name, args.seed, params, X, M, e1, tmp)
            t1 = time.perf_counter()
            recipe = _finetune(params, X, M, e1, path, e2, lr_ft, p0)
            t2 = time.perf_counter()
            two_phase = _finetune(params, X, M, e1, path, e2, lr_ft, 1.0)
        one_phase = DToPSegmenter(p0=1.0, max_iter=e1 + e2, finetune_iter=0, **params).fit(X, M)
        print(f"training: step 1 {t1 - t0:.0f}s{' (reused checkpoint)' if args.step1_dir else ''}, "
              f"step 2 with pruning {t2 - t1:.0f}s", flush=True)

        first = len(rows)
        for label, est, p0s, epochs in [
            ("unpruned", base, [1.0], e1),
            ("prediction only", base, SWEEP_P0[1:], e1),
            ("control, one phase", one_phase, [1.0], e1 + e2),
            ("control, two phases", two_phase, [1.0], e1 + e2),
            (f"dtop (defaults, p0={p0:g})", recipe, SWEEP_P0, e1 + e2),
        ]:
            for q in p0s:
                row, pred, rep = _evaluate(est, Xt, Mt, q, n_classes)
                row.update({"method": label, "dataset": name, "p0": q, "k": params["k"],
                            "epochs": epochs})
                rows.append(row)
                if est is recipe and q == p0:
                    figures[name] = (Xt[:4], Mt[:4], pred[:4], rep)
        ref = rows[first]["seconds"]  # the first row is the unpruned model
        for r in rows[first:]:
            r["predict_time_ratio"] = r.pop("seconds") / ref
        _print_rows(rows[first:])
        _verdict([r for r in rows if r["dataset"] == name], p0)
    print("\nGFLOPs per image, analytic (unpruned = all tokens, final head only; DToP adds the "
          "auxiliary heads). time = predict wall time / unpruned predict wall time, same run "
          "(batched, padded to the longest image per batch). Paper headline (SegViT, "
          "ADE20K/Pascal Context/COCO-Stuff): 20-35% fewer GFLOPs at no mIoU loss.")
    os.makedirs(args.out, exist_ok=True)
    plot(rows, figures, args.out)
    return rows


def _print_rows(rows):
    print(f"{'method':28s} {'p0':>5s} {'epochs':>6s} {'mIoU':>6s} {'GFLOPs':>8s} {'saved':>7s} "
          f"{'pruned':>7s} {'tokens/stage':>14s} {'time':>5s}")
    for r in rows:
        tokens = "/".join(f"{v:.0f}" for v in r["tokens_per_stage"])
        print(f"{r['method']:28s} {r['p0']:5.2f} {r['epochs']:6d} {r['miou']:6.4f} "
              f"{r['gflops_per_image']:8.4f} {100 * r['flops_saved']:6.1f}% "
              f"{100 * r['pruned_fraction']:6.1f}% {tokens:>14s} {r['predict_time_ratio']:5.2f}")


def _verdict(rows, p0):
    best = max(r["miou"] for r in rows if r["method"].startswith("control"))
    own = next(r for r in rows if r["method"].startswith("dtop") and r["p0"] == p0)
    pred = next((r for r in rows if r["method"] == "prediction only" and r["p0"] == p0), None)
    print(f"defaults: mIoU {own['miou']:.4f} at {100 * own['flops_saved']:.1f}% fewer FLOPs vs the "
          f"better same-budget control {best:.4f} ({100 * (own['miou'] - best):+.2f} points)"
          + ("" if pred is None else f"; pruning at prediction only (finetune_iter=0): "
             f"{pred['miou']:.4f} ({100 * (pred['miou'] - best):+.2f})"), flush=True)


# ------------------------------------------------------------------------ sweep
def sweep(args):
    import torch

    from neural.segmentation import DToPSegmenter

    torch.set_num_threads(max(1, args.blas_threads))
    e1 = 20 if args.quick else DToPSegmenter().max_iter
    epochs_grid = args.grid_epochs or ((2, 5) if args.quick else GRID_EPOCHS)
    lr_grid = args.grid_lr or ((0.1, 1.0) if args.quick else GRID_LR)
    p0_grid = args.grid_p0 or ((0.9, 0.99) if args.quick else GRID_P0)
    rows = []
    for seed in range(args.seed, args.seed + args.seeds):
        sargs = copy.copy(args)
        sargs.seed = seed
        for name in args.datasets:
            X, M, Xt, Mt, n_classes = _data(name, sargs)
            params = _model_params(sargs)
            lr0 = params["learning_rate_init"]
            with tempfile.TemporaryDirectory() as tmp:
                path, base = _step1(sargs, name, seed, params, X, M, e1, tmp)
                ref, _, _ = _evaluate(base, Xt, Mt, 1.0, n_classes, repeats=1)
                pred_only = {q: _evaluate(base, Xt, Mt, q, n_classes, repeats=1)[0]
                             for q in p0_grid}
                for f in epochs_grid:
                    one_miou = float("nan")
                    if not args.no_one_phase:
                        one = DToPSegmenter(p0=1.0, max_iter=e1 + f, finetune_iter=0,
                                            **params).fit(X, M)
                        one_miou = _evaluate(one, Xt, Mt, 1.0, n_classes, repeats=1)[0]["miou"]
                    for frac in lr_grid:
                        two = _finetune(params, X, M, e1, path, f, frac * lr0, 1.0)
                        two_miou = _evaluate(two, Xt, Mt, 1.0, n_classes, repeats=1)[0]["miou"]
                        for q in p0_grid:
                            est = _finetune(params, X, M, e1, path, f, frac * lr0, q)
                            r = _evaluate(est, Xt, Mt, q, n_classes, repeats=1)[0]
                            row = {"method": "dtop fine-tuned", "dataset": name, "seed": seed,
                                   "step1_epochs": e1, "finetune_iter": f, "lr_fraction": frac,
                                   "p0": q, "miou": r["miou"], "flops_saved": r["flops_saved"],
                                   "control_one_phase": one_miou, "control_two_phases": two_miou,
                                   "unpruned_step1": ref["miou"],
                                   "prediction_only": pred_only[q]["miou"],
                                   "prediction_only_saved": pred_only[q]["flops_saved"]}
                            row["delta"] = row["miou"] - np.nanmax([one_miou, two_miou])
                            rows.append(row)
                            print(f"seed {seed} {name:11s} ft {f:2d} lr x{frac:<4g} p0 {q:<5g} "
                                  f"mIoU {r['miou']:.4f} saved {100 * r['flops_saved']:5.1f}% | "
                                  f"controls 1ph {one_miou:.4f} 2ph {two_miou:.4f} | "
                                  f"delta {100 * row['delta']:+.2f} | pred-only "
                                  f"{pred_only[q]['miou']:.4f}", flush=True)
    _sweep_summary(rows)
    return rows


def _sweep_summary(rows):
    """Mean over seeds and data sets of each setting: delta vs the better control, FLOPs saved."""
    keys = sorted({(r["finetune_iter"], r["lr_fraction"], r["p0"]) for r in rows})
    print(f"\n{'ft':>3s} {'lr':>5s} {'p0':>5s} | "
          + " | ".join(f"{d:>22s}" for d in sorted({r['dataset'] for r in rows}))
          + " | mean delta  worst delta  mean saved")
    for key in keys:
        sel = [r for r in rows if (r["finetune_iter"], r["lr_fraction"], r["p0"]) == key]
        cells = []
        for d in sorted({r["dataset"] for r in rows}):
            ds = [r for r in sel if r["dataset"] == d]
            cells.append(f"{100 * np.mean([r['delta'] for r in ds]):+6.2f} pt "
                         f"{100 * np.mean([r['flops_saved'] for r in ds]):5.1f}% saved")
        deltas = [r["delta"] for r in sel]
        print(f"{key[0]:3d} {key[1]:5g} {key[2]:5g} | " + " | ".join(cells)
              + f" | {100 * np.mean(deltas):+7.2f} pt {100 * min(deltas):+8.2f} pt "
              f"{100 * np.mean([r['flops_saved'] for r in sel]):8.1f}%")
    print("delta: pruned mIoU minus the better of the same-budget unpruned controls that ran "
          "(points); saved: FLOPs saved at the training p0.")


# ------------------------------------------------------------------------ plots
def plot(rows, figures, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted({r["dataset"] for r in rows})
    fig, axes = plt.subplots(1, len(names), figsize=(6 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names):
        rs = [r for r in rows if r["dataset"] == name]
        for prefix, marker in [("prediction only", "o"), ("dtop", "s")]:
            line = [r for r in rs if r["method"].startswith(prefix)
                    or (prefix == "prediction only" and r["method"] == "unpruned")]
            line.sort(key=lambda r: r["gflops_per_image"])
            ax.plot([r["gflops_per_image"] for r in line], [r["miou"] for r in line],
                    marker=marker, label=line[-1]["method"] if prefix == "dtop" else prefix)
            for r in line:
                ax.annotate(f"{r['p0']:g}", (r["gflops_per_image"], r["miou"]), fontsize=7,
                            textcoords="offset points", xytext=(3, 3))
        for method, marker in [("control, one phase", "^"), ("control, two phases", "v")]:
            r = next(r for r in rs if r["method"] == method)
            ax.plot([r["gflops_per_image"]], [r["miou"]], marker, markersize=10, label=method)
        ax.set_xlabel("GFLOPs per image")
        ax.set_ylabel("test mIoU")
        ax.set_title(f"DToP on {name} (labels: p0)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "dtop_miou_vs_flops.png"), dpi=120)
    plt.close(fig)

    name = names[0]
    X, M, pred, rep = figures[name]
    fig = exit_figure(X, M, pred, rep.exit_stage[:4], rep.tokens_active.shape[1])
    fig.savefig(os.path.join(out, "dtop_exit_stages.png"), dpi=120)
    plt.close(fig)


def exit_figure(X, M, pred, exit_stage, n_stages):
    """Images, true and predicted masks, and the stage where every token exited."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    n = len(X)
    top = int(max(M.max(), pred.max()))
    fig, axes = plt.subplots(n, 4, figsize=(7, 1.8 * n), squeeze=False)
    cmap = ListedColormap(plt.cm.viridis(np.linspace(0, 1, n_stages)))
    for i in range(n):
        axes[i, 0].imshow(X[i].transpose(1, 2, 0))
        axes[i, 1].imshow(M[i], vmin=0, vmax=top, cmap="tab10", interpolation="nearest")
        axes[i, 2].imshow(pred[i], vmin=0, vmax=top, cmap="tab10", interpolation="nearest")
        im = axes[i, 3].imshow(exit_stage[i] + 1, vmin=0.5, vmax=n_stages + 0.5, cmap=cmap,
                               interpolation="nearest")
    for ax, title in zip(axes[0], ["image", "true mask", "prediction", "exit stage"]):
        ax.set_title(title, fontsize=9)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=axes[:, 3], ticks=range(1, n_stages + 1), shrink=0.6)
    return fig


def main(argv=None):
    parser = make_parser(__doc__.splitlines()[0])
    parser.add_argument("--sweep", action="store_true",
                        help="measure the fine-tuning grid (epochs x learning rate x p0) against "
                             "same-budget controls instead of the defaults")
    parser.add_argument("--seeds", type=int, default=1,
                        help="--sweep: seeds to repeat it over (from --seed)")
    parser.add_argument("--grid-epochs", nargs="+", type=int, dest="grid_epochs",
                        help=f"--sweep: fine-tuning epochs (default {GRID_EPOCHS})")
    parser.add_argument("--grid-lr", nargs="+", type=float, dest="grid_lr",
                        help=f"--sweep: fine-tuning learning rates as fractions of "
                             f"learning_rate_init (default {GRID_LR})")
    parser.add_argument("--grid-p0", nargs="+", type=float, dest="grid_p0",
                        help=f"--sweep: thresholds (default {GRID_P0})")
    parser.add_argument("--step1-dir", dest="step1_dir", default=None,
                        help="folder where the step-1 checkpoints (same data, seed and "
                             "epochs) are kept and reused")
    parser.add_argument("--no-one-phase", action="store_true", dest="no_one_phase",
                        help="--sweep: skip the one-phase controls (the two-phase control, same "
                             "schedule and epochs, remains)")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS),
                        help="data sets to run (default: all)")
    args = parser.parse_args(argv)
    from sklearn.exceptions import ConvergenceWarning

    with blas_threads(args.blas_threads), warnings.catch_warnings():
        # fixed budgets on purpose: the rows compare equal epoch counts
        warnings.simplefilter("ignore", ConvergenceWarning)
        rows = sweep(args) if args.sweep else run(args)
    if args.json:
        write_json(args.json, "bench_dtop_sweep" if args.sweep else "bench_dtop", rows, args)
    return rows


if __name__ == "__main__":
    main()
