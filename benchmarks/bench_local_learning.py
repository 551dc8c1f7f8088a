"""Supervised local learning side by side: BP, DGL, InfoPro, MAN, AugLocal.

For each data set available offline (scikit-learn's digits upscaled to 32x32,
and the package's synthetic 10-class shapes) every method is trained in the
same run with the same backbone, budget and seed, and we report

* test accuracy,
* peak activation memory (bytes of tensors saved for backward, measured with
  ``saved_tensors_hooks``) relative to BP,
* time per epoch relative to BP.

A second table measures activation memory alone at the papers' scale
(ResNet-32, width 16, 32x32 inputs), where one training step suffices.
The papers' headline figures are printed next to ours.

Usage::

    python benchmarks/bench_local_learning.py --quick            # ~2.5 minutes on 2 cores
    python benchmarks/bench_local_learning.py                    # ResNet-32, ~50 minutes
    python benchmarks/bench_local_learning.py --json results.json --out benchmarks/results/
"""

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from neural import LocalLearningClassifier
from neural.datasets import load_digits_images, make_shapes

# (label, method, extra parameters); K is filled in per configuration
METHODS = [
    ("BP", "bp", {}),
    ("DGL", "dgl", {}),
    ("InfoPro", "infopro", {}),
    ("DGL+MAN", "man", {"man_base": "dgl"}),
    ("InfoPro+MAN", "man", {"man_base": "infopro"}),
    ("AugLocal", "auglocal", {}),
]

# Headline figures of the papers (see ../shared/papers/local_learning.md):
# (method, setting, memory relative to BP, accuracy - BP accuracy in points)
PAPERS = [
    ("InfoPro", "CIFAR-10 ResNet-110, InfoPro* K=2, bs 1024", 5.38 / 9.40, 6.50 - 6.41),
    ("InfoPro", "CIFAR-10 ResNet-110, InfoPro* K=4, bs 1024", 3.52 / 9.40, 6.50 - 6.93),
    ("DGL", "CIFAR-10 ResNet-32 K=4 (InfoPro's table)", None, 7.37 - 11.48),
    ("InfoPro", "CIFAR-10 ResNet-32 K=4, softmax", None, 7.37 - 8.64),
    ("DGL", "CIFAR-10 ResNet-32 K=8 (MAN's table)", None, 6.37 - 11.63),
    ("DGL+MAN", "CIFAR-10 ResNet-32 K=8", None, 6.37 - 8.42),
    ("InfoPro", "CIFAR-10 ResNet-32 K=8 (MAN's table)", None, 6.37 - 11.51),
    ("InfoPro+MAN", "CIFAR-10 ResNet-32 K=8", None, 6.37 - 9.32),
    ("InfoPro+MAN", "ImageNet ResNet-101 K=4", 10.47 / 19.71, 22.03 - 21.73),
    ("AugLocal", "CIFAR-10 ResNet-110, d=6", None, 93.96 - 94.61),
    ("AugLocal", "GPU memory (abstract)", 0.60, None),
]


# One headline per method for the side-by-side comparison:
# (memory relative to BP, setting), (accuracy - BP in points, setting)
HEADLINE = {
    "DGL": (None, (-4.11, "CIFAR-10 R-32 K=4")),
    "InfoPro": ((0.37, "R-110 K=4"), (-1.27, "CIFAR-10 R-32 K=4")),
    "DGL+MAN": (None, (-2.05, "CIFAR-10 R-32 K=8")),
    "InfoPro+MAN": ((0.53, "ImageNet R-101 K=4"), (-2.95, "CIFAR-10 R-32 K=8")),
    "AugLocal": ((0.60, "abstract"), (-0.65, "CIFAR-10 R-110")),
}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small budget (a few minutes on 2 cores)")
    p.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results",
                   help="folder for the plot (default: benchmarks/results/)")
    p.add_argument("--epochs", type=int, default=None, help="override the number of epochs")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (1 keeps timings stable on a shared 2-core machine)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def config(quick):
    if quick:
        return dict(backbone="resnet20", width=8, epochs=4, n_train=1200, modules=4)
    return dict(backbone="resnet32", width=16, epochs=10, n_train=2000, modules=8)


def datasets(cfg, seed):
    X, y = load_digits_images(32)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=seed, stratify=y)
    yield "digits-32", Xtr, ytr, Xte, yte
    Xs, ys = make_shapes(cfg["n_train"] + 1000, image_size=32, noise=0.3, n_distractors=3,
                         random_state=seed)
    yield "shapes-32", Xs[: cfg["n_train"]], ys[: cfg["n_train"]], Xs[cfg["n_train"]:], ys[cfg["n_train"]:]


def n_modules_for(method, cfg, n_layers, aux_depth=2):
    # AugLocal's own layout: one layer per module, the last D+1 layers together
    return n_layers - aux_depth if method == "auglocal" else cfg["modules"]


def make(method, extra, cfg, n_modules, seed, max_iter):
    return LocalLearningClassifier(
        method=method, n_local_modules=n_modules, backbone=cfg["backbone"], width=cfg["width"],
        max_iter=max_iter, batch_size=64, learning_rate_init=3e-3, random_state=seed,
        device="auto", **extra,
    )


def accuracy_rows(cfg, seed):
    n_layers = 3 * ((int(cfg["backbone"][6:]) - 2) // 6) + 1
    rows = []
    for name, Xtr, ytr, Xte, yte in datasets(cfg, seed):
        for label, method, extra in METHODS:
            K = n_modules_for(method, cfg, n_layers)
            clf = make(method, extra, cfg, K, seed, cfg["epochs"])
            start = time.perf_counter()
            clf.fit(Xtr, ytr)
            wall = time.perf_counter() - start
            rows.append({
                "benchmark": "accuracy", "dataset": name, "method": label,
                "backbone": f"{cfg['backbone']}-w{cfg['width']}",
                "modules": 1 if method == "bp" else K, "epochs": clf.n_iter_,
                "test_accuracy": float(clf.score(Xte, yte)),
                "peak_activation_mib": clf.peak_activation_bytes_ / 2**20,
                "peak_cuda_mib": None if clf.peak_cuda_memory_bytes_ is None
                else clf.peak_cuda_memory_bytes_ / 2**20,
                "epoch_time_s": float(np.median([h["time"] for h in clf.history_])),
                "fit_time_s": wall,
            })
            print(f"  {name:10s} {label:12s} acc={rows[-1]['test_accuracy']:.3f} "
                  f"({wall:.0f}s)", flush=True)
    add_relative(rows, ("dataset",))
    return rows


def memory_rows(seed, ks=(4, 8, 16)):
    """Activation memory at the papers' scale: ResNet-32, width 16, 32x32, batch 64."""
    X, y = make_shapes(64, image_size=32, random_state=seed)
    rows = []
    for K in ks:
        for label, method, extra in METHODS:
            if method == "bp" and K != ks[0]:
                continue
            n = 14 if method == "auglocal" else K  # AugLocal's layout for ResNet-32, D=2
            if method == "auglocal" and K != ks[0]:
                continue
            clf = make(method, extra, dict(backbone="resnet32", width=16), n, seed, 1)
            clf.fit(X, y)
            rows.append({
                "benchmark": "memory", "dataset": "batch 64, 3x32x32", "method": label,
                "backbone": "resnet32-w16", "modules": 1 if method == "bp" else n,
                "peak_activation_mib": clf.peak_activation_bytes_ / 2**20,
                "peak_cuda_mib": None if clf.peak_cuda_memory_bytes_ is None
                else clf.peak_cuda_memory_bytes_ / 2**20,
            })
    add_relative(rows, ("dataset",))
    return rows


def add_relative(rows, keys):
    for row in rows:
        bp = next(r for r in rows if r["method"] == "BP" and all(r[k] == row[k] for k in keys))
        row["memory_vs_bp"] = row["peak_activation_mib"] / bp["peak_activation_mib"]
        if "test_accuracy" in row:
            row["accuracy_minus_bp"] = row["test_accuracy"] - bp["test_accuracy"]
            row["time_vs_bp"] = row["epoch_time_s"] / bp["epoch_time_s"]


def print_tables(acc, mem):
    print("\nAccuracy, activation memory and time per epoch (same run, same budget)")
    head = f"{'dataset':10s} {'method':12s} {'K':>3s} {'test acc':>8s} {'acc-BP':>7s} " \
           f"{'act MiB':>8s} {'mem/BP':>7s} {'s/epoch':>8s} {'time/BP':>7s}"
    print(head)
    print("-" * len(head))
    for r in acc:
        print(f"{r['dataset']:10s} {r['method']:12s} {r['modules']:3d} {r['test_accuracy']:8.3f} "
              f"{100 * r['accuracy_minus_bp']:+7.1f} {r['peak_activation_mib']:8.1f} "
              f"{r['memory_vs_bp']:7.2f} {r['epoch_time_s']:8.2f} {r['time_vs_bp']:7.2f}")
    print("\nActivation memory at paper scale (ResNet-32, width 16, batch 64, 32x32)")
    for r in mem:
        print(f"  {r['method']:12s} K={r['modules']:2d}  {r['peak_activation_mib']:7.1f} MiB"
              f"  ({r['memory_vs_bp']:.2f} x BP)")
    print("\nPapers' headline figures (memory relative to BP; accuracy - BP in points)")
    for method, setting, m, a in PAPERS:
        ms = f"{m:.2f} x BP" if m is not None else "    -    "
        as_ = f"{a:+.2f}" if a is not None else "   -"
        print(f"  {method:12s} {ms:10s} {as_:>6s}  {setting}")


def comparison_rows(acc):
    """Our memory ratio and accuracy gap next to each method's headline figure."""
    rows = []
    for method, (mem, gap) in HEADLINE.items():
        ours = [r for r in acc if r["method"] == method]
        rows.append({
            "benchmark": "comparison", "method": method,
            "paper_memory_vs_bp": None if mem is None else mem[0],
            "paper_memory_setting": None if mem is None else mem[1],
            "paper_accuracy_minus_bp_points": gap[0], "paper_accuracy_setting": gap[1],
            "ours": {r["dataset"]: {"memory_vs_bp": r["memory_vs_bp"],
                                    "accuracy_minus_bp_points": 100 * r["accuracy_minus_bp"]}
                     for r in ours},
        })
    return rows


def print_comparison(rows):
    print("\nOurs next to the papers (memory / BP, accuracy - BP in points)")
    for r in rows:
        pm = "  -  " if r["paper_memory_vs_bp"] is None else f"{r['paper_memory_vs_bp']:.2f}"
        ours = "; ".join(f"{d}: {v['memory_vs_bp']:.2f}, {v['accuracy_minus_bp_points']:+.1f}"
                         for d, v in r["ours"].items())
        print(f"  {r['method']:12s} paper: {pm}, {r['paper_accuracy_minus_bp_points']:+.2f} "
              f"({r['paper_accuracy_setting']})  |  ours: {ours}")
    print("  Differences: the papers report total GPU memory at batch 1024 (weights, optimizer"
          "\n  state and workspaces included), we count saved activations only; they train"
          "\n  160-400 epochs with augmentation on CIFAR/ImageNet, we train a few epochs on"
          "\n  small offline sets, so our accuracy gaps are larger and noisier.")


def plot(acc, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted({r["dataset"] for r in acc})
    fig, axes = plt.subplots(1, len(names) + 1, figsize=(5 * (len(names) + 1), 4))
    colours = {label: f"C{i}" for i, (label, _, _) in enumerate(METHODS)}
    for ax, name in zip(axes, names):
        for r in (r for r in acc if r["dataset"] == name):
            ax.scatter(r["memory_vs_bp"], r["test_accuracy"], color=colours[r["method"]], s=50)
            ax.annotate(f"{r['method']} (K={r['modules']})", (r["memory_vs_bp"], r["test_accuracy"]),
                        fontsize=7, xytext=(4, 2), textcoords="offset points")
        ax.set(title=f"{name} (ours)", xlabel="peak activation memory / BP",
               ylabel="test accuracy")
        ax.axvline(1.0, color="grey", lw=0.5)
    ax = axes[-1]
    for method, setting, m, a in PAPERS:
        if m is not None and a is not None:
            ax.scatter(m, a, marker="s", color=colours[method], s=50)
            ax.annotate(f"{method}: {setting.split(',')[0]}", (m, a), fontsize=6,
                        xytext=(4, 2), textcoords="offset points")
    for r in acc:
        ax.scatter(r["memory_vs_bp"], 100 * r["accuracy_minus_bp"], color=colours[r["method"]],
                   marker="o", alpha=0.5, s=25)
    ax.axhline(0.0, color="grey", lw=0.5)
    for label, colour in colours.items():
        ax.scatter([], [], color=colour, label=label)
    ax.legend(fontsize=7, loc="lower left")
    ax.set(title="papers (squares) vs ours (dots)", xlabel="memory / BP",
           ylabel="accuracy - BP (points)")
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    path = out / "local_learning_memory_vs_accuracy.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    cfg = config(args.quick)
    if args.epochs:
        cfg["epochs"] = args.epochs
    print(f"config: {cfg}, threads={args.threads}, device="
          f"{'cuda' if torch.cuda.is_available() else 'cpu'}", flush=True)
    acc = accuracy_rows(cfg, args.seed)
    mem = memory_rows(args.seed)
    print_tables(acc, mem)
    comparison = comparison_rows(acc)
    print_comparison(comparison)
    path = plot(acc, args.out)
    print(f"\nplot: {path}")
    if args.json:
        rows = acc + mem + comparison + [
            {"benchmark": "paper", "method": m, "setting": s, "memory_vs_bp": r,
             "accuracy_minus_bp_points": a}
            for m, s, r, a in PAPERS
        ]
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1))
        print(f"json: {args.json}")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
