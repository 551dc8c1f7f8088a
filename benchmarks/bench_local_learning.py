"""Supervised local learning side by side: memory as users measure it, and accuracy.

Memory (the setting of issue 13): random 64x64 RGB images, batch 128, one
epoch (3 steps), ResNet-32 of width 16, K = 4 and K = 8 modules (AugLocal: its
automatic layout, every layer a module and the last D+1 layers together, K =
14; and its old K = 4 layout). Every method runs in its own fresh Python
process, once per allocator setting, and we report, relative to BP:

* saved: ``peak_activation_bytes_``, the peak of tensors saved for backward;
* live: ``peak_memory_bytes_``, the peak of bytes held by live tensors over a
  steady-state step (weights, gradients, optimizer state, activations,
  temporaries), which no allocator setting changes;
* process peak: the resident memory the fit adds to its process (``VmHWM``
  after the fit minus ``VmRSS`` before, the peak reset just before the fit),
  with glibc's default settings; with glibc told to hand freed memory back at
  once (``MALLOC_MMAP_THRESHOLD_=65536 MALLOC_TRIM_THRESHOLD_=0``, the
  "allocator-neutral" column); and with jemalloc preloaded when a
  ``libjemalloc.so.2`` is found (Debian: ``apt-get install libjemalloc2``) or
  given with ``--jemalloc PATH``.

Accuracy: scikit-learn's digits at 16x16 placed at a random position of a
32x32 canvas ("shifted digits", 1,257 training / 540 test images), 15 epochs,
ResNet-32 of width 16, K = 8 (AugLocal: its automatic layout), batch 64, Adam
at 3e-3 with a cosine schedule; next to each method the accuracy the same
setting gave before the changes of issue 13 (commit 8517a0e), and issue 13's
targets (allocator-neutral process peak against BP at K = 8; accuracy within 2
points of before).

Where the memory goes (``--part breakdown``): for each method at K = 8, the
peak of live tensors and of saved activations while each module runs.

Usage::

    python benchmarks/bench_local_learning.py --quick               # ~3 minutes on 2 cores
    python benchmarks/bench_local_learning.py --part memory         # ~2 hours on 2 cores
    python benchmarks/bench_local_learning.py --part breakdown      # ~10 minutes
    python benchmarks/bench_local_learning.py --part accuracy       # ~4 hours on 2 cores
    python benchmarks/bench_local_learning.py --part accuracy --only BP,AugLocal --json acc.json
"""

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (  # noqa: E402
    fresh_process_env,
    make_parser,
    proc_status,
    pyplot,
    reset_peak_rss,
    write_json,
)

NEUTRAL_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}
JEMALLOC_PATHS = ("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2",
                  "/usr/lib64/libjemalloc.so.2", "/usr/local/lib/libjemalloc.so.2")

# (label, method, extra parameters); n_local_modules comes from the configuration unless given
METHODS = [
    ("BP", "bp", {}),
    ("DGL", "dgl", {}),
    ("InfoPro", "infopro", {}),
    ("DGL+MAN", "man", {"man_base": "dgl"}),
    ("InfoPro+MAN", "man", {"man_base": "infopro"}),
    ("AugLocal", "auglocal", {"n_local_modules": "auto"}),
]
# the behaviour before issue 17's defaults, one parameter away
OLD_DEFAULTS = [
    ("InfoPro+MAN, recipe 'infopro'", "man", {"man_base": "infopro", "man_recipe": "infopro"}),
    ("AugLocal, K=4 (old default)", "auglocal", {"n_local_modules": 4}),
]

# Test accuracy in the accuracy setting before the changes of issue 13: commit 8517a0e, the same
# data, split, parameters and seed. MAN's default there was man_base="infopro" with InfoPro's own
# auxiliary network (what man_recipe="infopro" gives now); AugLocal ran with n_local_modules=14,
# the layout that is automatic now; DGL+MAN had man_base="dgl" with DGL's auxiliary network.
BEFORE = {"BP": 0.980, "DGL": 0.981, "InfoPro": 0.954, "DGL+MAN": 0.967, "InfoPro+MAN": 0.961,
          "InfoPro+MAN, recipe 'infopro'": 0.961, "AugLocal": 0.983}
ACCURACY_TOLERANCE = 0.02  # issue 13: within 2 points of before

# Headline figures of the papers (see ../shared/papers/local_learning.md):
# (method, setting, memory relative to BP, accuracy - BP accuracy in points)
PAPERS = [
    ("InfoPro", "CIFAR-10 ResNet-110, InfoPro* K=2, bs 1024", 5.38 / 9.40, 6.50 - 6.41),
    ("InfoPro", "CIFAR-10 ResNet-110, InfoPro* K=4, bs 1024", 3.52 / 9.40, 6.50 - 6.93),
    ("DGL", "CIFAR-10 ResNet-32 K=8 (MAN's table)", None, 6.37 - 11.63),
    ("DGL+MAN", "CIFAR-10 ResNet-32 K=8", None, 6.37 - 8.42),
    ("InfoPro", "CIFAR-10 ResNet-32 K=8 (MAN's table)", None, 6.37 - 11.51),
    ("InfoPro+MAN", "CIFAR-10 ResNet-32 K=8", None, 6.37 - 9.32),
    ("InfoPro+MAN", "ImageNet ResNet-101 K=4", 10.47 / 19.71, 22.03 - 21.73),
    ("AugLocal", "CIFAR-10 ResNet-110, d=6", None, 93.96 - 94.61),
    ("AugLocal", "GPU memory (abstract)", 0.60, None),
]


def parse_args(argv=None):
    p = make_parser(__doc__.splitlines()[0])
    p.add_argument("--part", choices=("all", "memory", "breakdown", "accuracy"), default="all")
    p.add_argument("--epochs", type=int, default=None, help="override the accuracy epochs")
    p.add_argument("--jemalloc", default=None,
                   help="libjemalloc.so.2 to preload for the jemalloc column (default: look in "
                        "the usual system folders; the column is left out if none is found)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (1 keeps timings and memory stable on a shared machine)")
    p.add_argument("--only", default=None,
                   help="comma-separated method labels to run (ratios to BP need 'BP' among them)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def memory_config(quick):
    if quick:
        return dict(backbone="resnet20", width=16, image_size=32, batch_size=64, ks=(4,))
    return dict(backbone="resnet32", width=16, image_size=64, batch_size=128, ks=(4, 8))


def accuracy_config(quick):
    if quick:
        return dict(backbone="resnet20", width=8, epochs=3, modules=4)
    return dict(backbone="resnet32", width=16, epochs=15, modules=8)


def selected(args, label):
    return args.only is None or label in args.only.split(",")


# ------------------------------------------------------------------ memory, in a fresh process
def child(spec):
    """One fit in this (fresh) process; print its memory figures as one JSON line."""
    import torch

    from neural import LocalLearningClassifier

    torch.set_num_threads(spec["threads"])
    warnings.filterwarnings("ignore")
    rng = np.random.RandomState(spec["seed"])
    n, size = 3 * spec["batch_size"], spec["image_size"]
    X = rng.rand(n, 3, size, size).astype(np.float32)
    y = rng.randint(0, 10, n)
    params = {"n_local_modules": spec["modules"], **spec["extra"]}
    clf = LocalLearningClassifier(
        method=spec["method"], backbone=spec["backbone"], width=spec["width"], max_iter=1,
        batch_size=spec["batch_size"], random_state=spec["seed"], device="cpu", **params)
    reset = reset_peak_rss()
    before = proc_status("VmRSS")
    start = time.perf_counter()
    clf.fit(X, y)
    print(json.dumps({
        "fit_s": time.perf_counter() - start,
        "saved_bytes": clf.peak_activation_bytes_,
        "live_bytes": clf.peak_memory_bytes_,
        "process_bytes": proc_status("VmHWM") - before if reset and before is not None else None,
        "modules": len(clf.module_bounds_),
    }))


def run_child(spec, allocator, jemalloc):
    extra = {"neutral": NEUTRAL_ENV, "jemalloc": {"LD_PRELOAD": jemalloc}}.get(allocator)
    env = fresh_process_env(spec["threads"], extra)
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], env=env,
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"child {spec} ({allocator}) failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def find_jemalloc(path):
    if path is not None:
        if not os.path.exists(path):
            raise SystemExit(f"--jemalloc {path}: no such file")
        return path
    return next((p for p in JEMALLOC_PATHS if os.path.exists(p)), None)


def memory_rows(args, quick):
    cfg = memory_config(quick)
    # --quick measures jemalloc only when asked to, to stay short
    jemalloc = find_jemalloc(args.jemalloc) if args.jemalloc or not quick else None
    allocators = ["default", "neutral"] + (["jemalloc"] if jemalloc else [])
    configs = [("BP", "bp", {}, 1)]
    for K in cfg["ks"]:
        configs += [(label, m, extra, K) for label, m, extra in METHODS[1:-1]]
    configs.append(METHODS[-1] + ("auto",))
    if not quick:
        configs += [(label, m, extra, K) for K in cfg["ks"] for label, m, extra in OLD_DEFAULTS[:1]]
        configs.append(OLD_DEFAULTS[1] + (4,))
    configs = [c for c in configs if selected(args, c[0])]
    rows = []
    for label, method, extra, K in configs:
        spec = dict(method=method, extra=extra, modules=K, backbone=cfg["backbone"],
                    width=cfg["width"], image_size=cfg["image_size"],
                    batch_size=cfg["batch_size"], threads=args.threads, seed=args.seed)
        row = {"benchmark": "memory", "method": label,
               "setting": f"{cfg['backbone']}-w{cfg['width']}, random {cfg['image_size']}x"
                          f"{cfg['image_size']} RGB, batch {cfg['batch_size']}, one epoch"}
        start = time.perf_counter()
        for allocator in allocators:
            res = run_child(spec, allocator, jemalloc)
            row["modules"] = res["modules"]
            row["saved_mib"] = res["saved_bytes"] / 2**20
            row["live_mib"] = res["live_bytes"] / 2**20
            row[f"process_{allocator}_mib"] = (None if res["process_bytes"] is None
                                               else res["process_bytes"] / 2**20)
            row[f"fit_{allocator}_s"] = res["fit_s"]
        rows.append(row)
        print(f"  {label:32s} K={row['modules']:2d}  saved {row['saved_mib']:7.1f}  live "
              f"{row['live_mib']:7.1f}  process " + ", ".join(
                  f"{a} {row[f'process_{a}_mib']:7.1f}" for a in allocators)
              + f" MiB ({time.perf_counter() - start:.0f}s)", flush=True)
    bp = next((r for r in rows if r["method"] == "BP"), None)
    for row in rows:
        for key in [k for k in row if k.endswith("_mib")]:
            row[key.replace("_mib", "_vs_bp")] = (None if bp is None or row[key] is None
                                                  or bp[key] is None else row[key] / bp[key])
    return rows, allocators


def _num(value, spec, width):
    return ("-" if value is None else format(value, spec)).rjust(width)


def print_memory(rows, allocators):
    print(f"\nMemory relative to BP ({rows[0]['setting']}); each fit in its own fresh process")
    head = f"{'method':32s} {'K':>3s} {'saved':>6s} {'live':>6s} " + " ".join(
        f"{'proc:' + a:>14s}" for a in allocators)
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['method']:32s} {r['modules']:3d} {_num(r['saved_vs_bp'], '.2f', 6)} "
              f"{_num(r['live_vs_bp'], '.2f', 6)} "
              + " ".join(_num(r[f"process_{a}_vs_bp"], ".2f", 14) for a in allocators))
    bp = next((r for r in rows if r["method"] == "BP"), None)
    if bp is not None:
        print(f"BP in MiB: saved {bp['saved_mib']:.0f}, live {bp['live_mib']:.0f}, "
              + ", ".join(f"process ({a}) {_num(bp[f'process_{a}_mib'], '.0f', 0)}"
                          for a in allocators))


def memory_targets(rows):
    """Issue 13's targets on the allocator-neutral process peak at K = 8 (AugLocal: its layout)."""
    pick = {r["method"]: r for r in rows if r["modules"] == 8 or r["method"] == "AugLocal"}
    local = [r for name, r in pick.items() if name not in ("BP",) and "," not in name]
    ratio = {r["method"]: r["process_neutral_vs_bp"] for r in local}
    if not ratio or None in ratio.values():
        return []
    best = min(ratio, key=ratio.get)
    checks = [
        ("best local method <= 0.35x", ratio[best], 0.35, best),
        ("MAN (on InfoPro) <= 0.55x", ratio.get("InfoPro+MAN"), 0.55, "InfoPro+MAN"),
        ("MAN (on DGL) <= 0.55x", ratio.get("DGL+MAN"), 0.55, "DGL+MAN"),
        ("AugLocal <= 0.50x", ratio.get("AugLocal"), 0.50, "AugLocal"),
        ("every local method <= 0.60x", max(ratio.values()), 0.60, max(ratio, key=ratio.get)),
    ]
    return [{"benchmark": "target", "target": name, "method": method, "value": value,
             "limit": limit, "met": bool(value <= limit)}
            for name, value, limit, method in checks if value is not None]


def accuracy_targets(rows):
    """Issue 13's accuracy target: each method within 2 points of its accuracy before."""
    return [{"benchmark": "target", "target": "accuracy >= before - 2 points",
             "method": r["method"], "value": r["test_accuracy"],
             "limit": r["before"] - ACCURACY_TOLERANCE,
             "met": bool(r["test_accuracy"] >= r["before"] - ACCURACY_TOLERANCE)}
            for r in rows if r["before"] is not None]


def print_targets(title, targets, spec):
    print(f"\nIssue 13's targets ({title})")
    for t in targets:
        print(f"  {t['target']:30s} {t['method']:30s} {t['value']:{spec}} (limit "
              f"{t['limit']:{spec}})  {'met' if t['met'] else 'MISSED'}")


# ------------------------------------------------------------------- where the memory goes
def breakdown_rows(args, quick):
    """Per module: the peak of saved activations and of live tensors while it runs (K = 8).

    Allocator-independent, so measured in this process: after a one-step fit (optimizer
    state exists), one more step through the estimator's losses, backpropagated one by
    one as the trainer does, with the peaks read and reset after every module.
    """
    import torch

    from neural import LocalLearningClassifier
    from neural.memory import LiveTensorMemory, SavedTensorMemory

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    cfg = memory_config(quick)
    K = cfg["ks"][-1]
    rng = np.random.RandomState(args.seed)
    size, bs = cfg["image_size"], cfg["batch_size"]
    X = rng.rand(bs, 3, size, size).astype(np.float32)
    y = rng.randint(0, 10, bs)
    rows = []
    for label, method, extra in METHODS:
        if not selected(args, label):
            continue
        est = LocalLearningClassifier(
            method=method, backbone=cfg["backbone"], width=cfg["width"], max_iter=1,
            batch_size=bs, random_state=args.seed, device="cpu",
            **{"n_local_modules": K, **extra}).fit(X, y)
        net, opt = est.module_, est.optimizer_
        opt.zero_grad(set_to_none=True)
        xb, yb = torch.from_numpy(X), torch.from_numpy(y)
        state = [v for st in opt.state.values() for v in st.values() if torch.is_tensor(v)]
        resident = [*net.parameters(), *net.buffers(), *state, xb, yb]
        static = sum(t.untyped_storage().nbytes() for t in resident)
        saved_peaks, live_peaks = [], []
        with SavedTensorMemory(net.parameters()) as saved, LiveTensorMemory(resident) as live:
            for loss, _ in est._train_losses(xb, yb, None):
                loss.backward()
                del loss
                saved_peaks.append(saved.peak_bytes / 2**20)
                live_peaks.append(live.peak_bytes / 2**20)
                saved.peak_bytes, live.peak_bytes = saved.current_bytes, live.current_bytes
        rows.append({"benchmark": "breakdown", "method": label, "modules": len(live_peaks),
                     "static_mib": static / 2**20, "module_saved_mib": saved_peaks,
                     "module_live_mib": live_peaks})
        print(f"  {label:12s} K={len(live_peaks):2d} peak module {int(np.argmax(live_peaks))}",
              flush=True)
    return rows


def print_breakdown(rows):
    print("\nWhere the memory goes: peak MiB while each module runs (forward and backward), "
          "live tensors / of which saved activations")
    for r in rows:
        print(f"{r['method']:12s} static (weights, Adam state, batch) {r['static_mib']:.0f} MiB")
        print("   " + "  ".join(f"{k}:{live:.0f}/{saved:.0f}" for k, (live, saved) in
                                enumerate(zip(r["module_live_mib"], r["module_saved_mib"]))))


# ------------------------------------------------------------------------------- accuracy
def shifted_digits(seed=0, size=32, digit=16):
    """Digits at ``digit`` pixels placed at a random position of a ``size`` canvas."""
    from neural.datasets import load_digits_images

    X, y = load_digits_images(digit)
    rng = np.random.RandomState(seed)
    out = np.zeros((len(X), 1, size, size), np.float32)
    for i, (a, b) in enumerate(rng.randint(0, size - digit + 1, size=(len(X), 2))):
        out[i, :, a:a + digit, b:b + digit] = X[i]
    return out, y


def accuracy_rows(args, quick):
    import torch
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split

    from neural import LocalLearningClassifier

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    cfg = accuracy_config(quick)
    epochs = args.epochs or cfg["epochs"]
    X, y = shifted_digits(args.seed)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=args.seed,
                                          stratify=y)
    rows = []
    for label, method, extra in METHODS + ([] if quick else OLD_DEFAULTS):
        if not selected(args, label):
            continue
        params = {"n_local_modules": cfg["modules"], **extra}
        clf = LocalLearningClassifier(
            method=method, backbone=cfg["backbone"], width=cfg["width"], max_iter=epochs,
            batch_size=64, learning_rate_init=3e-3, random_state=args.seed, device="cpu",
            **params)
        start = time.perf_counter()
        clf.fit(Xtr, ytr)
        rows.append({
            "benchmark": "accuracy", "dataset": "shifted digits 32x32", "method": label,
            "backbone": f"{cfg['backbone']}-w{cfg['width']}", "epochs": epochs,
            "modules": len(clf.module_bounds_), "test_accuracy": float(clf.score(Xte, yte)),
            "before": None if quick or epochs != 15 else BEFORE.get(label),
            "fit_time_s": time.perf_counter() - start,
        })
        print(f"  {label:32s} K={rows[-1]['modules']:2d} acc={rows[-1]['test_accuracy']:.3f} "
              f"({rows[-1]['fit_time_s']:.0f}s)", flush=True)
    bp = next((r for r in rows if r["method"] == "BP"), None)
    for r in rows:
        r["accuracy_minus_bp"] = None if bp is None else r["test_accuracy"] - bp["test_accuracy"]
        r["time_vs_bp"] = None if bp is None else r["fit_time_s"] / bp["fit_time_s"]
    return rows


def print_accuracy(rows):
    r0 = rows[0]
    print(f"\nAccuracy ({r0['dataset']}, {r0['backbone']}, {r0['epochs']} epochs; before: the "
          "same setting at commit 8517a0e)")
    head = f"{'method':32s} {'K':>3s} {'test acc':>8s} {'acc-BP':>7s} {'before':>7s} " \
           f"{'change':>7s} {'time/BP':>7s}"
    print(head)
    print("-" * len(head))
    for r in rows:
        gap = None if r["accuracy_minus_bp"] is None else 100 * r["accuracy_minus_bp"]
        change = None if r["before"] is None else 100 * (r["test_accuracy"] - r["before"])
        print(f"{r['method']:32s} {r['modules']:3d} {r['test_accuracy']:8.3f} "
              f"{_num(gap, '+.1f', 7)} {_num(r['before'], '.3f', 7)} {_num(change, '+.1f', 7)} "
              f"{_num(r['time_vs_bp'], '.2f', 7)}")


def print_papers():
    print("\nPapers' headline figures (total GPU memory relative to BP; accuracy - BP in points)")
    for method, setting, m, a in PAPERS:
        ms = f"{m:.2f} x BP" if m is not None else "    -    "
        as_ = f"{a:+.2f}" if a is not None else "   -"
        print(f"  {method:12s} {ms:10s} {as_:>6s}  {setting}")


def plot(mem, allocators, brk, acc, out):
    plt = pyplot()
    panels = (mem is not None) + (brk is not None) + (acc is not None)
    if plt is None or not panels:
        return None
    fig, axes = plt.subplots(1, panels, figsize=(7 * panels, 4.5), squeeze=False)
    axes = list(axes[0])
    if mem is not None:
        ax = axes.pop(0)
        rows = [r for r in mem if r["method"] != "BP"]
        keys = ["saved_vs_bp", "live_vs_bp"] + [f"process_{a}_vs_bp" for a in allocators]
        width = 0.8 / len(keys)
        for j, key in enumerate(keys):
            ax.bar(np.arange(len(rows)) + j * width, [r[key] or 0 for r in rows], width,
                   label=key.replace("_vs_bp", "").replace("_", ": "))
        ax.set_xticks(np.arange(len(rows)) + 0.4 - width / 2)
        ax.set_xticklabels([f"{r['method']} K={r['modules']}" for r in rows], rotation=60,
                           ha="right", fontsize=7)
        ax.axhline(1.0, color="grey", lw=0.5)
        ax.set(ylabel="memory / BP", title="memory relative to BP (fresh process each)")
        ax.legend(fontsize=7)
    if brk is not None:
        ax = axes.pop(0)
        for r in brk:
            ax.plot(range(r["modules"]), r["module_live_mib"], marker="o", label=r["method"])
        ax.set(xlabel="module k", ylabel="peak MiB while module k runs",
               title="where the memory goes (live tensors)")
        ax.legend(fontsize=7)
    if acc is not None:
        ax = axes.pop(0)
        ax.barh([r["method"] for r in acc], [r["test_accuracy"] for r in acc], color="C0",
                label="now")
        ax.scatter([r["before"] for r in acc if r["before"] is not None],
                   [r["method"] for r in acc if r["before"] is not None], color="C3",
                   marker="|", s=200, label="before (8517a0e)")
        ax.set(xlabel="test accuracy", title=f"{acc[0]['dataset']}, {acc[0]['epochs']} epochs",
               xlim=(min(r["test_accuracy"] for r in acc) - 0.1, 1.0))
        ax.tick_params(axis="y", labelsize=7)
        ax.legend(fontsize=7)
    fig.tight_layout()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "local_learning_memory_accuracy.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv=None):
    args = parse_args(argv)
    if args.child is not None:
        child(json.loads(args.child))
        return
    import torch

    print(f"torch {torch.__version__}, threads={args.threads}, quick={args.quick}", flush=True)
    rows, mem, acc, allocators = [], None, None, []
    if args.part in ("all", "memory"):
        print("memory (one fresh process per method and allocator):", flush=True)
        mem, allocators = memory_rows(args, args.quick)
        rows += mem
    brk = None
    if args.part in ("all", "breakdown"):
        print("breakdown (per module, in this process):", flush=True)
        brk = breakdown_rows(args, args.quick)
        rows += brk
    if args.part in ("all", "accuracy"):
        print("accuracy:", flush=True)
        acc = accuracy_rows(args, args.quick)
        rows += acc
    if mem is not None:
        print_memory(mem, allocators)
        targets = memory_targets(mem)
        if targets and not args.quick:
            print_targets("allocator-neutral process peak / BP, K = 8, AugLocal's layout",
                          targets, ".2f")
            rows += targets
    if brk is not None:
        print_breakdown(brk)
    if acc is not None:
        print_accuracy(acc)
        targets = accuracy_targets(acc)
        if targets:
            print_targets("test accuracy against before", targets, ".3f")
            rows += targets
    print_papers()
    path = plot(mem, allocators, brk, acc, args.out)
    if path is not None:
        print(f"\nplot: {path}")
    if args.json:
        rows += [{"benchmark": "paper", "method": m, "setting": s, "memory_vs_bp": r,
                  "accuracy_minus_bp_points": a} for m, s, r, a in PAPERS]
        print(f"json: {write_json(args.json, 'bench_local_learning', rows, args)}")


if __name__ == "__main__":
    main()
