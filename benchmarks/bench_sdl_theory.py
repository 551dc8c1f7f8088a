"""Benchmark: the paper's claims about SDL, reproduced with sdlearn (same data, same run).

Four experiments:

1. LPGD converges linearly to the global minimum (planted data, inside the paper's
   conditions): log objective gap vs iteration, fitted rate per iteration, with the plain
   algorithm of the theory (``acceleration=False, classifier_steps=0``) and the default
   (momentum with restart and a Newton refit of the classifier in the current subspace);
   many random initialisations (``init='random'``) reach the same objective; xi far below and
   far above the maximum-likelihood value.
2. BCD reaches eps-stationary points: stationarity vs iteration (log-log) with the
   O((log t)^2 / t) reference line, with and without the diminishing radius.
3. Estimation: error of the planted dictionary (sine of the largest principal angle between
   the learnt and the true atom spans) and of the effective coefficients (the linear filter of
   the features, identifiable up to reparametrisation) vs the sample size n, both modes, with
   PCA and LogisticRegression as the two-step / unstructured references.
4. The motivating regime: semi-synthetic digits whose discriminative dictionary differs from
   the reconstructive one (:func:`sdlearn.datasets.make_digit_dictionary_classification`);
   SDL (xi sweep) vs LogisticRegression, PCA + LR and NMF + LR; accuracy vs reconstruction
   error Pareto plot.

Run ``python benchmarks/bench_sdl_theory.py --quick`` (a few minutes on 2 cores) or without
``--quick`` (more sizes, seeds and iterations). Plots go to ``--out``; ``--json PATH`` writes
the rows.
"""

import math
import os
import sys
import time
import warnings

import numpy as np
from sklearn.decomposition import NMF, PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import run_benchmark, environment, print_table, pyplot, write_json  # noqa: E402

from sdlearn import SDLClassifier, bcd, lpgd  # noqa: E402
from sdlearn.datasets import make_digit_dictionary_classification, make_sdl_classification  # noqa: E402
from sdlearn.metrics import effective_filter, linear_rate, objective_gap, subspace_distance  # noqa: E402

# LPGD and BCD stop when the relative decrease of the *whole* objective falls below tol; when
# xi ||X||^2 dominates the objective that stops the classifier after one step (reported to the
# lead). Every fit here therefore runs with this tiny tol and an explicit iteration budget.
TOL = 1e-12


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, **kwargs)


# ----------------------------------------------------------------------------------------------
# 1. LPGD: linear convergence, random starts, xi outside the conditions
# ----------------------------------------------------------------------------------------------
def planted(mode, quick, seed):
    n, p = (600, 60) if quick else (2000, 150)
    return make_sdl_classification(n_samples=n, n_features=p, n_components=4, n_aux=2, mode=mode,
                                   noise=1.0, random_state=seed)


def experiment_lpgd(quick, seed):
    rows, curves = [], {}
    xis = (0.005, 0.05, 0.5, 5.0, 50.0)
    n_starts = 5 if quick else 20
    for mode in ("filter", "feature"):
        d = planted(mode, quick, seed)
        common = dict(n_components=4, mode=mode, X_aux=d.aux, tol=0.0)
        for xi in xis:
            runs = {}
            for acc in (False, True):
                # plain = the theory's algorithm; default = momentum + Newton refit of the classifier
                extra = {} if acc else {"classifier_steps": 0}
                runs[acc] = quiet(lpgd, d.data, d.target, xi=xi, acceleration=acc, max_iter=3000, **extra, **common)
            starts = []
            for s in range(n_starts):
                res = quiet(lpgd, d.data, d.target, xi=xi, init="random", random_state=seed + 1 + s,
                            max_iter=3000, **common)
                starts.append(res)
            best = min(min(r.history["objective"]) for r in list(runs.values()) + starts)
            finals = np.array([r.history["objective"][-1] for r in starts])
            spread = float((finals.max() - finals.min()) / abs(best))
            worst_start = float((finals.max() - best) / abs(best))
            for acc, res in runs.items():
                gap = objective_gap(res.history["objective"], best)
                hit = np.flatnonzero(gap <= 1e-8)
                rows.append({
                    "method": "LPGD" + (" (default: momentum + refit)" if acc else " (plain)"), "dataset": f"planted {mode}",
                    "experiment": "lpgd_rate", "mode": mode, "xi": xi, "ml_xi": float(d.xi),
                    "rate": linear_rate(gap), "iters_to_1e-8": int(hit[0]) if len(hit) else None,
                    "n_iter": res.n_iter, "final_gap": float(gap[-1]),
                    "random_starts": n_starts, "start_spread": spread, "start_worst_gap": worst_start,
                    "start_iters_median": float(np.median([r.n_iter for r in starts])),
                })
                curves[(mode, xi, acc)] = gap
    return rows, curves, xis


def plot_lpgd(plt, curves, xis, path):
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    for ax, mode in zip(axes, ("filter", "feature")):
        for i, xi in enumerate(xis):
            for acc, style in ((False, "-"), (True, "--")):
                gap = curves[(mode, xi, acc)]
                gap = np.where(gap > 0, gap, np.nan)
                label = f"xi={xi:g}" + (" default" if acc else " plain")
                ax.semilogy(np.arange(len(gap)), gap, style, color=f"C{i}", label=label)
        ax.set_xlim(0, 80)
        ax.set_ylim(1e-15, 10)
        ax.set_xlabel("iteration")
        ax.set_ylabel("(F - F*) / |F*|")
        ax.set_title(f"LPGD, planted data, {mode} mode (ML xi = 0.5)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------------------------
# 2. BCD: stationarity vs iteration, with and without the diminishing radius
# ----------------------------------------------------------------------------------------------
def experiment_bcd(quick, seed):
    rows, curves = [], {}
    max_iter = 300 if quick else 1000
    digits = make_digit_dictionary_classification(n_samples=500, zoom=2, random_state=seed)
    for data_name in ("planted", "digits"):
        for mode in ("filter", "feature"):
            if data_name == "planted":
                d = planted(mode, quick, seed)
                X, y, aux, r, xi = d.data, d.target, d.aux, 4, float(d.xi)
            else:
                X, y, aux, r, xi = digits.data, digits.target, None, 5, 0.5
            norm_X = float(np.linalg.norm(X))
            for c in (None, 1.0, 1e-2):
                radius = None if c is None else c * norm_X
                res = quiet(bcd, X, y, n_components=r, mode=mode, X_aux=aux, xi=xi, max_iter=max_iter, tol=0.0,
                            radius=radius, radius_decay=0.5, init="random", random_state=seed)
                stat = np.asarray(res.history["stationarity"][1:], dtype=float)
                best_so_far = np.minimum.accumulate(stat)
                t = np.arange(1, len(stat) + 1)
                keep = (t >= 10) & (best_so_far > 0)
                slope = float(np.polyfit(np.log(t[keep]), np.log(best_so_far[keep]), 1)[0]) if keep.sum() > 3 else float("nan")
                name = "BCD" + ("" if c is None else f" radius {c:g}*||X||_F")
                at = lambda k: float(best_so_far[min(k, len(best_so_far)) - 1])  # noqa: E731
                rows.append({
                    "method": name, "dataset": f"{data_name} {mode}", "experiment": "bcd_stationarity",
                    "mode": mode, "init": "random", "n_iter": res.n_iter,
                    "stat_1": at(1), "stat_10": at(10), "stat_100": at(100), "stat_last": float(best_so_far[-1]),
                    "loglog_slope": slope, "objective": float(res.history["objective"][-1]),
                })
                curves[(f"{data_name} {mode}", c)] = best_so_far
            if data_name == "digits":
                ref = quiet(lpgd, X, y, n_components=r, mode=mode, xi=xi, max_iter=3000, tol=0.0)
                rows.append({"method": "LPGD (reference)", "dataset": f"{data_name} {mode}", "experiment": "bcd_stationarity",
                             "mode": mode, "init": "zero", "n_iter": ref.n_iter,
                             "objective": float(ref.history["objective"][-1])})
    return rows, curves


def plot_bcd(plt, curves, path):
    names = list(dict.fromkeys(k[0] for k in curves))
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 4.2), constrained_layout=True)
    for ax, name in zip(np.atleast_1d(axes), names):
        anchor, longest = None, 1
        for i, c in enumerate((None, 1.0, 1e-2)):
            stat = curves[(name, c)]
            t = np.arange(1, len(stat) + 1)
            ax.loglog(t, stat, color=f"C{i}", label="no radius" if c is None else f"radius {c:g}||X||_F")
            anchor = stat[min(9, len(stat) - 1)] if anchor is None else anchor
            longest = max(longest, len(stat))
        t = np.arange(10, max(longest, 11) + 1)
        ref = np.log(t) ** 2 / t
        ax.loglog(t, anchor * ref / ref[0], "k:", label="O((log t)^2 / t)")
        ax.set_xlabel("outer iteration t")
        ax.set_title(f"BCD, {name}, random init", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    np.atleast_1d(axes)[0].set_ylabel("min over s <= t of stationarity")
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------------------------
# 3. Estimation vs sample size
# ----------------------------------------------------------------------------------------------
def experiment_estimation(quick, seed):
    sizes = (100, 200, 400, 800, 1600) if quick else (100, 200, 400, 800, 1600, 3200, 6400)
    seeds = range(seed, seed + (3 if quick else 6))
    p, r = 50, 3
    rows = []
    for mode in ("filter", "feature"):
        for n in sizes:
            errs = {k: [] for k in ("lpgd", "bcd", "pca", "lr")}
            for s in seeds:
                d = make_sdl_classification(n_samples=n, n_features=p, n_components=r, n_aux=2, mode=mode,
                                            noise=1.0, class_sep=2.0, random_state=s)
                true_filter = d.filter if mode == "filter" else effective_filter(d.dictionary, d.coef, mode="feature")
                for solver, fn in (("lpgd", lpgd), ("bcd", bcd)):
                    res = quiet(fn, d.data, d.target, n_components=r, mode=mode, X_aux=d.aux, xi=float(d.xi),
                                max_iter=500, tol=TOL, random_state=s)
                    est = effective_filter(res.components, res.coef, mode=mode)
                    errs[solver].append((subspace_distance(res.components, d.dictionary),
                                         np.linalg.norm(est - true_filter) / np.linalg.norm(true_filter)))
                pca = PCA(r).fit(d.data)
                lr = LogisticRegression(max_iter=5000).fit(np.hstack([d.data, d.aux]), d.target)
                errs["pca"].append((subspace_distance(pca.components_, d.dictionary), float("nan")))
                errs["lr"].append((float("nan"), np.linalg.norm(lr.coef_[:, :p] - true_filter) / np.linalg.norm(true_filter)))
            for key, label in (("lpgd", "SDL lpgd"), ("bcd", "SDL bcd"), ("pca", "PCA (dictionary only)"),
                               ("lr", "LogisticRegression (filter only)")):
                e = np.asarray(errs[key])
                rows.append({
                    "method": label, "dataset": f"planted {mode}", "experiment": "estimation", "mode": mode, "n": n,
                    "dict_sin_angle": float(np.mean(e[:, 0])), "filter_rel_error": float(np.mean(e[:, 1])),
                    "seeds": len(e),
                })
    # log-log slopes vs n
    slopes = []
    for mode in ("filter", "feature"):
        for label in ("SDL lpgd", "SDL bcd", "PCA (dictionary only)", "LogisticRegression (filter only)"):
            sel = [r for r in rows if r["mode"] == mode and r["method"] == label]
            ns = np.log([r["n"] for r in sel])
            out = {"method": label, "dataset": f"planted {mode}", "experiment": "estimation_slope", "mode": mode}
            for key in ("dict_sin_angle", "filter_rel_error"):
                v = np.array([r[key] for r in sel])
                out[key + "_slope"] = float(np.polyfit(ns, np.log(v), 1)[0]) if np.all(np.isfinite(v)) else float("nan")
            slopes.append(out)
    return rows, slopes


def plot_estimation(plt, rows, path):
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    for ax, key, title in ((axes[0], "dict_sin_angle", "dictionary: sin(largest principal angle)"),
                           (axes[1], "filter_rel_error", "effective filter: relative error")):
        for i, mode in enumerate(("filter", "feature")):
            for j, (label, style) in enumerate((("SDL lpgd", "-o"), ("SDL bcd", ":x"), ("PCA (dictionary only)", "--s"),
                                                ("LogisticRegression (filter only)", "-.^"))):
                sel = [r for r in rows if r["mode"] == mode and r["method"] == label and np.isfinite(r[key])]
                if sel:
                    ax.loglog([r["n"] for r in sel], [r[key] for r in sel], style, color=f"C{2 * j + i}",
                              label=f"{label}, {mode}")
        ns = np.array(sorted({r["n"] for r in rows}), dtype=float)
        ax.loglog(ns, ns[0] ** 0.5 * 0.5 / np.sqrt(ns) * (1 if key == "dict_sin_angle" else 2), "k:", label="n^-1/2")
        ax.set_xlabel("n (samples)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------------------------
# 4. Semi-synthetic digits: discriminative dictionary != reconstructive dictionary
# ----------------------------------------------------------------------------------------------
def recon_error(X, X_hat):
    return float(np.linalg.norm(X - X_hat) / np.linalg.norm(X))


def experiment_digits(quick, seed):
    xis = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
    seeds = range(seed, seed + (3 if quick else 8))
    r = 5
    raw = []
    for s in seeds:
        d = make_digit_dictionary_classification(n_samples=500, noise=0.5, zoom=3, random_state=s)
        parts = train_test_split(d.data, d.target, d.proba, test_size=0.5, random_state=s, stratify=d.target)
        X_tr, X_te, y_tr, y_te, p_te = parts[0], parts[1], parts[2], parts[3], parts[5]
        raw.append({"method": "Bayes rule (true model)", "seed": s, "accuracy": float(np.mean((p_te > 0.5) == y_te)),
                    "recon_error": float("nan")})
        lr = LogisticRegression(max_iter=5000).fit(X_tr, y_tr)
        raw.append({"method": "LogisticRegression", "seed": s, "accuracy": lr.score(X_te, y_te),
                    "recon_error": float("nan")})
        pca = make_pipeline(PCA(r), StandardScaler(), LogisticRegression(max_iter=5000)).fit(X_tr, y_tr)
        raw.append({"method": f"PCA({r})+LR", "seed": s, "accuracy": pca.score(X_te, y_te),
                    "recon_error": recon_error(X_te, pca[0].inverse_transform(pca[0].transform(X_te)))})
        scaler = MinMaxScaler(clip=True).fit(X_tr)
        nmf = make_pipeline(scaler, NMF(r, max_iter=1000, random_state=s), StandardScaler(),
                            LogisticRegression(max_iter=5000))
        quiet(nmf.fit, X_tr, y_tr)
        Z = nmf[1].transform(scaler.transform(X_te))
        raw.append({"method": f"NMF({r})+LR", "seed": s, "accuracy": nmf.score(X_te, y_te),
                    "recon_error": recon_error(X_te, scaler.inverse_transform(nmf[1].inverse_transform(Z)))})
        for mode in ("filter", "feature"):
            for xi in xis:
                clf = SDLClassifier(r, mode=mode, xi=xi, tol=TOL, max_iter=300, random_state=s)
                quiet(clf.fit, X_tr, y_tr)
                raw.append({"method": f"SDL lpgd {mode}", "xi": xi, "seed": s, "accuracy": clf.score(X_te, y_te),
                            "recon_error": recon_error(X_te, clf.inverse_transform(clf.transform(X_te))),
                            "n_iter": clf.n_iter_})
    rows = []
    keys = list(dict.fromkeys((r_["method"], r_.get("xi")) for r_ in raw))
    for method, xi in keys:
        sel = [r_ for r_ in raw if r_["method"] == method and r_.get("xi") == xi]
        acc = np.array([r_["accuracy"] for r_ in sel])
        rec = np.array([r_["recon_error"] for r_ in sel])
        rows.append({
            "method": method, "dataset": "digits semi-synthetic (2,5 -> 4,7)", "experiment": "digits",
            "xi": xi, "accuracy": float(acc.mean()), "accuracy_sd": float(acc.std()),
            "recon_error": float(rec.mean()) if np.all(np.isfinite(rec)) else float("nan"), "seeds": len(sel),
        })
    return rows


def plot_pareto(plt, rows, path):
    fig, ax = plt.subplots(figsize=(7, 5), constrained_layout=True)
    for i, mode in enumerate(("filter", "feature")):
        sel = [r for r in rows if r["method"] == f"SDL lpgd {mode}"]
        ax.plot([r["recon_error"] for r in sel], [r["accuracy"] for r in sel], "-o", color=f"C{i}",
                label=f"SDL {mode} (xi sweep)")
        for r in sel:
            ax.annotate(f"{r['xi']:g}", (r["recon_error"], r["accuracy"]), fontsize=7,
                        textcoords="offset points", xytext=(4, 2))
    for j, r in enumerate(x for x in rows if not x["method"].startswith("SDL")):
        if np.isfinite(r["recon_error"]):
            ax.plot(r["recon_error"], r["accuracy"], "s", color=f"C{2 + j}", label=r["method"])
        else:
            ax.axhline(r["accuracy"], ls="--" if "Bayes" not in r["method"] else ":", color=f"C{2 + j}",
                       label=r["method"])
    ax.set_xlabel("relative reconstruction error on the test set")
    ax.set_ylabel("test accuracy")
    ax.set_title("Digits semi-synthetic: accuracy vs reconstruction (r = 5)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------
LPGD_COLUMNS = [
    ("dataset", "data", ""), ("method", "method", ""), ("xi", "xi", "g"), ("rate", "rate/iter", ".3f"),
    ("iters_to_1e-8", "its to 1e-8", "d"), ("n_iter", "its run", "d"), ("final_gap", "final gap", ".1e"),
    ("random_starts", "starts", "d"), ("start_spread", "spread", ".1e"), ("start_worst_gap", "worst gap", ".1e"),
    ("start_iters_median", "its (starts)", ".0f"),
]
BCD_COLUMNS = [
    ("dataset", "data", ""), ("method", "method", ""), ("init", "init", ""), ("n_iter", "its", "d"),
    ("stat_1", "stat t=1", ".2e"), ("stat_10", "t=10", ".2e"), ("stat_100", "t=100", ".2e"),
    ("stat_last", "last", ".2e"), ("loglog_slope", "log-log slope", ".2f"), ("objective", "objective", ".8g"),
]
EST_COLUMNS = [
    ("dataset", "data", ""), ("method", "method", ""), ("n", "n", "d"), ("dict_sin_angle", "sin angle(W)", ".4f"),
    ("filter_rel_error", "filter rel. err", ".4f"), ("seeds", "seeds", "d"),
]
SLOPE_COLUMNS = [
    ("dataset", "data", ""), ("method", "method", ""), ("dict_sin_angle_slope", "slope sin angle vs n", ".2f"),
    ("filter_rel_error_slope", "slope filter err vs n", ".2f"),
]
DIGIT_COLUMNS = [
    ("dataset", "data", ""), ("method", "method", ""), ("xi", "xi", "g"), ("accuracy", "accuracy", ".3f"),
    ("accuracy_sd", "sd", ".3f"), ("recon_error", "recon err", ".4f"), ("seeds", "seeds", "d"),
]


def main(argv=None):
    run_benchmark(run, __doc__.splitlines()[0], argv)


def run(args):
    quick, seed = args.quick, args.seed
    t0 = time.perf_counter()
    threads = args.blas_threads if args.blas_threads > 0 else "library default"
    print(f"bench_sdl_theory ({'quick' if quick else 'full'} mode, seed {seed}, BLAS threads: {threads})")
    print("environment: " + ", ".join(f"{k}={v}" for k, v in environment().items()))
    os.makedirs(args.out, exist_ok=True)
    plt = pyplot()
    all_rows = []

    print(f"\n[{time.perf_counter() - t0:6.1f}s] 1. LPGD linear convergence", flush=True)
    rows, curves, xis = experiment_lpgd(quick, seed)
    all_rows += rows
    print_table(rows, LPGD_COLUMNS, title=(
        "LPGD on planted data (make_sdl_classification, r=4, 2 covariates, noise 1 -> ML xi = 0.5); gap = (F - F*)/|F*| "
        "with F* the best value of all runs; rate = fitted contraction per iteration on gaps in [1e-10, 1e-2]; "
        "spread = (max - min)/|F*| of the final objectives from the random starts (init='random')"))
    if plt is not None:
        plot_lpgd(plt, curves, xis, os.path.join(args.out, "theory_lpgd_rate.png"))

    print(f"\n[{time.perf_counter() - t0:6.1f}s] 2. BCD stationarity", flush=True)
    rows, curves = experiment_bcd(quick, seed)
    all_rows += rows
    print_table(rows, BCD_COLUMNS, title=(
        "BCD from random starts on the planted data above (xi = 0.5) and on digits semi-synthetic data (zoom 2, p=256, "
        "r=5, xi=0.5): best stationarity (gradient-mapping norm) so far at t; log-log slope fitted for t >= 10 (the "
        "O((log t)^2/t) bound has slope about -1 + 2/log t); LPGD's objective on the digits data as the reference"))
    if plt is not None:
        plot_bcd(plt, curves, os.path.join(args.out, "theory_bcd_stationarity.png"))

    print(f"\n[{time.perf_counter() - t0:6.1f}s] 3. Estimation vs n", flush=True)
    rows, slopes = experiment_estimation(quick, seed)
    all_rows += rows + slopes
    print_table(rows, EST_COLUMNS, title=(
        "Estimation on planted data (p=50, r=3, 2 covariates, noise 1, class_sep 2, xi = ML 0.5), mean over seeds; "
        "sin angle = sin of the largest principal angle between learnt and true atom spans; filter = W beta (filter mode), W (W^T W)^+ beta (feature mode)"))
    print()
    print_table(slopes, SLOPE_COLUMNS, title="log-log slopes of the errors vs n (-0.5 = the parametric rate)")
    if plt is not None:
        plot_estimation(plt, rows, os.path.join(args.out, "theory_estimation.png"))

    print(f"\n[{time.perf_counter() - t0:6.1f}s] 4. Digits semi-synthetic", flush=True)
    rows = experiment_digits(quick, seed)
    all_rows += rows
    print_table(rows, DIGIT_COLUMNS, title=(
        "make_digit_dictionary_classification(n=500, noise 0.5, zoom 3 -> p=576): features from 20 images of digits "
        "2/5, labels through 20 images of 4/7; 50/50 split; r=5; mean over seeds; recon err = ||X - X_hat|| / ||X|| "
        "on the test set (PCA centres the data, SDL does not)"))
    if plt is not None:
        plot_pareto(plt, rows, os.path.join(args.out, "theory_digits_pareto.png"))
        print(f"\nplots: {args.out}/theory_*.png")
    if args.json:
        write_json(args.json, "bench_sdl_theory", all_rows, args)
        print(f"rows written to {args.json}")
    print(f"total {time.perf_counter() - t0:.1f}s")


if __name__ == "__main__":
    main()
