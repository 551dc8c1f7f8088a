"""Benchmark: SDLClassifier (LPGD / BCD, filter / feature) against the alternatives, same data, same run.

For each data set (planted SDL data with auxiliary covariates, scikit-learn's digits, breast cancer)
it fits, on one fixed train/test split:

* SDLClassifier with solver in {lpgd, bcd} and mode in {filter, feature};
* LogisticRegression on all features (auxiliary covariates included);
* DictionaryLearning -> LogisticRegression (a Pipeline; covariates passed through);
* NMF -> LogisticRegression (NMF on min-max scaled features, see NMF_NOTE);
* SDLClassifier(solver='bcd', nonnegative=True) on the same min-max scaled features
  (supervised NMF, the counterpart of NMF -> LR);
* the authors' package SupervisedMF (``from SMF import SMF_LPGD, SMF_BCD``), when installed,
  on the binary data sets (its code is binary-only), with the same rank, xi and iteration budget;
* the Bayes rule of the planted model (reference accuracy).

It reports fit time, iterations, the final SDL objective (from ``history_`` for sdlearn; evaluated
with sdlearn's objective at the fitted factors for SupervisedMF), the gap to the best objective
of the same mode, test accuracy and macro F1; plus LPGD's fit time over one scikit-learn
TruncatedSVD of X with the same rank, and LPGD's per-iteration time over two dense products
X @ B (B of shape (n_features, r)), all measured in the same run. It writes a convergence plot
(objective minus best objective seen vs iteration and vs time, planted data) and, with
``--json PATH``, the rows as JSON.

Run ``python benchmarks/bench_sdl.py --quick`` (a couple of minutes on 2 cores) or without
``--quick`` (full sizes, about 10 minutes).
"""

import importlib.metadata
import math
import os
import sys
import time
import warnings

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.decomposition import NMF, DictionaryLearning, TruncatedSVD
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import run_benchmark, environment, median_time, print_table, pyplot, silenced, timed, write_json  # noqa: E402

from sdlearn import SDLClassifier  # noqa: E402
from sdlearn._backend import get_namespace  # noqa: E402
from sdlearn._objective import sdl_objective  # noqa: E402
from sdlearn.datasets import make_sdl_classification  # noqa: E402

NMF_NOTE = (
    "NMF needs X >= 0: its features are min-max scaled to [0, 1] on the training range "
    "(test values clipped to [0, 1]); covariates pass through unscaled."
)
ALPHA = 1.0  # SDLClassifier's default ridge; every objective below is evaluated with it


# ----------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------
class Dataset:
    """One train/test split: main features (reconstructed), covariates, labels, rank, xi."""

    def __init__(self, name, X, y, aux, rank, xi, seed, note, proba=None, standardise=False):
        idx = np.arange(len(y))
        tr, te = train_test_split(idx, test_size=0.25, random_state=seed, stratify=y)
        X_tr, X_te = X[tr], X[te]
        if standardise:
            scaler = StandardScaler().fit(X_tr)
            X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
        self.name, self.rank, self.xi, self.note = name, rank, xi, note
        self.X_tr, self.X_te, self.y_tr, self.y_te = X_tr, X_te, y[tr], y[te]
        self.A_tr = None if aux is None else aux[tr]
        self.A_te = None if aux is None else aux[te]
        self.proba_te = None if proba is None else proba[te]
        self.classes = np.unique(y)
        self.p = X.shape[1]
        self.q = 0 if aux is None else aux.shape[1]

    @property
    def n_classes(self):
        return len(self.classes)

    def full(self, part):
        """Main features with the covariates appended as the last ``q`` columns."""
        X, A = (self.X_tr, self.A_tr) if part == "train" else (self.X_te, self.A_te)
        return X if A is None else np.hstack([X, A])

    @property
    def aux_idx(self):
        return list(range(self.p, self.p + self.q)) if self.q else None

    def describe(self):
        return (
            f"{self.name}: n_train={len(self.y_tr)}, n_test={len(self.y_te)}, p={self.p}, "
            f"q(aux)={self.q}, classes={self.n_classes}, rank r={self.rank}, xi={self.xi:g}. {self.note}"
        )


def load_datasets(quick, seed):
    n, p = (1000, 150) if quick else (2000, 300)
    planted = make_sdl_classification(
        n_samples=n, n_features=p, n_components=5, n_aux=2, mode="filter", noise=1.0, random_state=seed
    )
    out = [
        Dataset(
            "planted", planted.data, planted.target, planted.aux, rank=5, xi=float(planted.xi), seed=seed,
            note="make_sdl_classification (filter mode, noise 1); xi = the generator's 1/(2 noise^2); not standardised.",
            proba=planted.proba,
        )
    ]
    X, y = load_digits(return_X_y=True)
    out.append(Dataset("digits", X.astype(float), y, None, rank=10, xi=0.1, seed=seed,
                       note="load_digits, standardised on the training split; xi fixed a priori (not tuned).",
                       standardise=True))
    X, y = load_breast_cancer(return_X_y=True)
    out.append(Dataset("breast_cancer", X, y, None, rank=5, xi=0.1, seed=seed,
                       note="load_breast_cancer, standardised on the training split; xi fixed a priori (not tuned).",
                       standardise=True))
    return out


# ----------------------------------------------------------------------------------------------
# metrics
# ----------------------------------------------------------------------------------------------
def one_hot(ds, y):
    return (y[:, None] == ds.classes[None, 1:]).astype(float)


def objective_at(ds, mode, W, C, beta, gamma, b, X=None):
    """sdlearn's objective (alpha = ALPHA, unit sample weights) at factored parameters.

    W (p, r), C (n, r) training codes, beta (r, K-1), gamma (q, K-1) or None, b (K-1,).
    """
    X = ds.X_tr if X is None else X
    xp = get_namespace(X)
    Y = one_hot(ds, ds.y_tr)
    w = np.ones(len(ds.y_tr))
    parts = sdl_objective(X, Y, w, ds.A_tr, W, C, beta, gamma, b, xi=ds.xi, alpha=ALPHA, mode=mode, xp=xp)
    return parts["objective"]


def scores(ds, y_pred):
    return {
        "accuracy": float(accuracy_score(ds.y_te, y_pred)),
        "f1_macro": float(f1_score(ds.y_te, y_pred, average="macro")),
    }


def notes_from(caught):
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        return "max_iter reached"
    return ""


# ----------------------------------------------------------------------------------------------
# sdlearn
# ----------------------------------------------------------------------------------------------
def run_sdl(ds, solver, mode, seed, check_log, projection="auto"):
    aux = ds.aux_idx
    make = lambda: SDLClassifier(  # noqa: E731
        n_components=ds.rank, mode=mode, solver=solver, xi=ds.xi, alpha=ALPHA, aux_features=aux,
        projection=projection, random_state=seed,
    )
    X_tr, X_te = ds.full("train"), ds.full("test")
    clf, seconds, caught = timed(lambda: make().fit(X_tr, ds.y_tr))
    hist = clf.history_
    objective = hist["objective"][-1]
    # cross-check: sdlearn's objective at the fitted factors must equal the last history entry
    # (the same evaluation is applied to SupervisedMF's factors below)
    res = clf._result
    gamma = clf.aux_coef_.T if ds.q else None
    recomputed = objective_at(ds, mode, clf.components_.T, res.codes, clf.coef_.T, gamma, clf.intercept_)
    rel = abs(recomputed - objective) / max(abs(objective), 1e-12)
    if rel > 1e-6:
        check_log.append(
            f"[check] {ds.name} sdl-{solver}-{mode} ({projection}): history_ objective {objective:.8g} but the objective "
            f"at the returned factors is {recomputed:.8g} (relative difference {rel:.1e})"
        )
    steps = np.diff(hist["time"])
    row = {
        "method": f"SDL {solver} {mode}" + ("" if projection == "auto" else f" [{projection}]"),
        "dataset": ds.name,
        "fit_time_s": seconds,
        "n_iter": int(clf.n_iter_),
        "time_per_iter_ms": 1000 * float(np.median(steps)) if len(steps) else float("nan"),
        "objective": float(objective),
        "objective_at_factors": float(recomputed),
        "mode": mode,
        **scores(ds, clf.predict(X_te)),
        "notes": notes_from(caught),
    }
    return row, clf


def run_sdl_nonnegative(ds, seed):
    """Supervised NMF (BCD, nonnegative W and H) on the same min-max scaled data as NMF -> LR."""
    aux = ds.aux_idx
    scaler = MinMaxScaler(clip=True)
    pre = scaler if not ds.q else ColumnTransformer([("mm", scaler, list(range(ds.p)))], remainder="passthrough")
    make = lambda: make_pipeline(  # noqa: E731
        pre,
        SDLClassifier(n_components=ds.rank, solver="bcd", mode="filter", nonnegative=True, xi=ds.xi,
                      alpha=ALPHA, aux_features=aux, random_state=seed),
    )
    X_tr, X_te = ds.full("train"), ds.full("test")
    model, seconds, caught = timed(lambda: make().fit(X_tr, ds.y_tr))
    clf = model[-1]
    note = "on min-max data (objective not comparable)"
    extra = notes_from(caught)
    return {
        "method": "SDL bcd filter nonneg",
        "dataset": ds.name,
        "fit_time_s": seconds,
        "n_iter": int(clf.n_iter_),
        "time_per_iter_ms": 1000 * float(np.median(np.diff(clf.history_["time"]))),
        "objective": float("nan"),
        **scores(ds, model.predict(X_te)),
        "notes": note + ("; " + extra if extra else ""),
    }


# ----------------------------------------------------------------------------------------------
# scikit-learn baselines
# ----------------------------------------------------------------------------------------------
def _with_aux(ds, transformer):
    """Apply ``transformer`` to the main features and pass the covariates through."""
    if not ds.q:
        return transformer
    return ColumnTransformer([("main", transformer, list(range(ds.p)))], remainder="passthrough")


def run_sklearn(ds, name, seed, dl_max_iter, nmf_max_iter):
    lr = lambda: LogisticRegression(max_iter=2000)  # noqa: E731
    if name == "LogisticRegression":
        make = lambda: lr()  # noqa: E731
        note = ""
    elif name == "DictionaryLearning+LR":
        make = lambda: make_pipeline(  # noqa: E731
            _with_aux(ds, DictionaryLearning(n_components=ds.rank, max_iter=dl_max_iter, random_state=seed)),
            StandardScaler(), lr(),
        )
        note = f"DL max_iter={dl_max_iter}"
    elif name == "NMF+LR":
        make = lambda: make_pipeline(  # noqa: E731
            _with_aux(ds, make_pipeline(MinMaxScaler(clip=True),
                                        NMF(n_components=ds.rank, max_iter=nmf_max_iter, random_state=seed))),
            StandardScaler(), lr(),
        )
        note = "min-max scaled input"
    else:  # pragma: no cover
        raise ValueError(name)
    X_tr, X_te = ds.full("train"), ds.full("test")
    model, seconds, caught = timed(lambda: make().fit(X_tr, ds.y_tr))
    extra = notes_from(caught)
    return {
        "method": name,
        "dataset": ds.name,
        "fit_time_s": seconds,
        "objective": float("nan"),
        **scores(ds, model.predict(X_te)),
        "notes": "; ".join(s for s in (note, extra) if s),
    }


# ----------------------------------------------------------------------------------------------
# the authors' package SupervisedMF
# ----------------------------------------------------------------------------------------------
def import_smf():
    """Import SupervisedMF's NumPy module and patch what it needs to run.

    Returns ``(module or None, message lines)``.
    """
    try:
        import SMF  # PyPI "SupervisedMF" installs a top-level module SMF.py
    except ImportError as exc:
        if getattr(exc, "name", None) == "SMF":
            return None, ["SupervisedMF not installed (pip install supervisedmf): its rows are skipped."]
        return None, [f"SupervisedMF is installed but does not import ({exc!r}): its rows are skipped."]
    try:
        version = importlib.metadata.version("SupervisedMF")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        version = "?"
    lines = [f"SupervisedMF {version} ({SMF.__file__})."]
    if not hasattr(SMF, "TruncatedSVD"):
        SMF.TruncatedSVD = TruncatedSVD
        lines.append(
            "  PATCHED at run time: SMF.py uses TruncatedSVD in SMF_LPGD.rank_r_projection without importing it "
            "(NameError as released); we inject sklearn.decomposition.TruncatedSVD into the SMF module."
        )
    lines.append(
        "  Also: SMF_*.fit ends with self.validation(), which scores X_test with its own Youden threshold and, "
        "in SMF_LPGD, crashes formatting a missing key (np.round(None)); we replace validation with a no-op "
        "on each instance (not timed) and score the fitted factors ourselves with the same rule as every other "
        "row (threshold 0.5; feature mode: least-squares test codes, the package's 'naive' rule)."
    )
    return SMF, lines


def _smf_lipschitz(ds, mode):
    """Global Lipschitz constant of the lifted objective SMF_LPGD descends (its nu = 0)."""
    n = len(ds.y_tr)
    Z = np.ones((n, 1)) if not ds.q else np.hstack([np.ones((n, 1)), ds.A_tr])
    classifier = 0.25 * np.linalg.norm(ds.X_tr, 2) ** 2 if mode == "filter" else 0.25
    return max(2.0 * ds.xi, classifier, 0.25 * np.linalg.norm(Z, 2) ** 2)


def _smf_data(ds):
    X = [ds.X_tr.T.copy(), ds.y_tr[None, :].astype(float)]
    X_test = [ds.X_te.T.copy(), ds.y_te[None, :].astype(float)]
    aux = None if not ds.q else ds.A_tr.T.copy()
    aux_test = None if not ds.q else ds.A_te.T.copy()
    return X, aux, X_test, aux_test


def _smf_factors(ds, model):
    """(W (p, r), C (n, r), beta (r, 1), gamma (q, 1) or None, b (1,)) from an SMF model."""
    W, H = model.loading, model.code
    r = ds.rank
    coef = np.asarray(W[1])[0]
    b, beta, gamma = coef[:1], coef[1:1 + r][:, None], coef[1 + r:][:, None]
    return np.asarray(W[0]), np.asarray(H).T, beta, (gamma if ds.q else None), b


def _smf_predict(ds, mode, W0, beta, gamma, b):
    if mode == "filter":
        s = ds.X_te @ (W0 @ beta)
    else:
        codes = np.linalg.lstsq(W0, ds.X_te.T, rcond=None)[0].T
        s = codes @ beta
    s = s[:, 0] + b[0]
    if ds.q:
        s = s + ds.A_te @ gamma[:, 0]
    return ds.classes[(s > 0).astype(int)]


def _lifted_objective(ds, mode, A, B, Beta1):
    """sdlearn's objective of SMF_LPGD's lifted iterate (A: classifier block, B = W H ~ X^T)."""
    n = len(ds.y_tr)
    if mode == "filter":  # A = W beta^T (p, 1)
        s = ds.X_tr @ A[:, 0]
        pen = float(A[:, 0] @ A[:, 0])
    else:  # A = beta^T H (1, n)
        s = A[0].copy()
        pen = float(A[0] @ A[0]) / n
    s = s + Beta1[0, 0]
    if ds.q:
        s = s + ds.A_tr @ Beta1[0, 1:]
        pen += float(Beta1[0, 1:] @ Beta1[0, 1:])
    y = ds.y_tr
    logistic = float(np.sum(np.logaddexp(0.0, s) - y * s))
    recon = ds.xi * float(np.sum((ds.X_tr.T - B) ** 2))
    return logistic + recon + 0.5 * ALPHA * pen


def _fit_smf_lpgd(SMF, ds, mode, iters, tau, seed, record):
    X, aux, X_test, aux_test = _smf_data(ds)
    np.random.seed(seed)  # SMF draws its random initialisation from the global NumPy RNG
    with silenced():
        model = SMF.SMF_LPGD(X, X_auxiliary=aux, X_test=X_test, X_test_aux=aux_test,
                             n_components=ds.rank, xi=ds.xi, iterations=iters)
    model.validation = lambda *a, **k: None
    history = {"objective": [], "time": []}
    overhead = [0.0]
    if record:
        # wrap the one LPGD step to record sdlearn's objective of each lifted iterate; the time
        # spent evaluating it is subtracted from the clock
        step = model.step_SVP
        start = [None]

        def recorded_step(A, B, Beta1, **kwargs):
            out = step(A, B, Beta1, **kwargs)
            t0 = time.perf_counter()
            history["time"].append(t0 - start[0] - overhead[0])
            history["objective"].append(_lifted_objective(ds, mode, *out))
            overhead[0] += time.perf_counter() - t0
            return out

        model.step_SVP = recorded_step
    with silenced(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # overflow in exp for too large steps
        t0 = time.perf_counter()
        if record:
            start[0] = t0
        model.fit(iter=iters, beta=0.0, search_radius_const=tau, SDL_option=mode)
        seconds = time.perf_counter() - t0 - overhead[0]
    return model, seconds, history


def run_smf_lpgd(SMF, ds, mode, iters, pilot_iters, seed):
    L = _smf_lipschitz(ds, mode)
    # constant step (the package's beta=0 option): pick the best of three multiples of 1/L on a
    # short pilot run; the package default search_radius_const=1000 diverges on these data
    candidates = (0.5, 1.0, 1.9)
    best, best_obj = 1.0, math.inf
    for c in candidates:
        model, _, hist = _fit_smf_lpgd(SMF, ds, mode, pilot_iters, c / L, seed, record=True)
        obj = hist["objective"][-1] if hist["objective"] else math.inf
        if np.isfinite(obj) and obj < best_obj:
            best, best_obj = c, obj
    model, seconds, hist = _fit_smf_lpgd(SMF, ds, mode, iters, best / L, seed, record=True)
    W0, C, beta, gamma, b = _smf_factors(ds, model)
    objective = objective_at(ds, mode, W0, C, beta, gamma, b)
    return {
        "method": f"SupervisedMF SMF_LPGD {mode}",
        "dataset": ds.name,
        "fit_time_s": seconds,
        "n_iter": iters,
        "time_per_iter_ms": 1000 * seconds / iters,
        "objective": float(objective),
        "mode": mode,
        **scores(ds, _smf_predict(ds, mode, W0, beta, gamma, b)),
        "notes": f"constant step {best:g}/L (best of {'/'.join(map(str, candidates))} on {pilot_iters} its)",
    }, hist


def run_smf_bcd(SMF, ds, mode, iters, seed):
    X, aux, X_test, aux_test = _smf_data(ds)
    np.random.seed(seed)
    with silenced():
        model = SMF.SMF_BCD(X, X_auxiliary=aux, X_test=X_test, X_test_aux=aux_test, n_components=ds.rank,
                            xi=ds.xi, iterations=iters, nonnegativity=[False, False, False])
    model.validation = lambda *a, **k: None
    radius = iters * float(np.linalg.norm(ds.X_tr))  # the authors' experiments: iterations * ||X_train||_F
    # record sdlearn's objective once per outer iteration (evaluation time is taken off the clock):
    # filter: the dictionary update opens iteration t, when model.loading / model.code hold the end of
    # iteration t-1; feature: the code update closes the iteration (model.loading is updated in place)
    history = {"objective": [], "time": []}
    clock = {"start": None, "overhead": 0.0, "calls": 0}

    def record(H):
        t0 = time.perf_counter()
        history["time"].append(t0 - clock["start"] - clock["overhead"])
        W0, C, beta, gamma, b = _smf_factors(ds, model)
        history["objective"].append(objective_at(ds, mode, W0, np.asarray(H).T, beta, gamma, b))
        clock["overhead"] += time.perf_counter() - t0

    if mode == "filter":
        update = model.update_dict_joint_logistic

        def wrapped(*args, **kwargs):
            if clock["calls"] > 0:
                record(model.code)
            clock["calls"] += 1
            return update(*args, **kwargs)

        model.update_dict_joint_logistic = wrapped
    else:
        update = model.update_code_joint_logistic

        def wrapped(*args, **kwargs):
            H = update(*args, **kwargs)
            record(H)
            return H

        model.update_code_joint_logistic = wrapped
    with silenced(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = clock["start"] = time.perf_counter()
        model.fit(option=mode, iter=iters, beta=1, search_radius_const=radius)
        seconds = time.perf_counter() - t0 - clock["overhead"]
    if mode == "filter":
        history["time"].append(seconds)
        W0, C, beta, gamma, b = _smf_factors(ds, model)
        history["objective"].append(objective_at(ds, mode, W0, C, beta, gamma, b))
    W0, C, beta, gamma, b = _smf_factors(ds, model)
    objective = objective_at(ds, mode, W0, C, beta, gamma, b)
    return {
        "method": f"SupervisedMF SMF_BCD {mode}",
        "dataset": ds.name,
        "fit_time_s": seconds,
        "n_iter": iters,
        "time_per_iter_ms": 1000 * seconds / iters,
        "objective": float(objective),
        "mode": mode,
        **scores(ds, _smf_predict(ds, mode, W0, beta, gamma, b)),
        "notes": "signed W, H (nonnegativity off); radius its*||X||_F, decay 1",
    }, history


# ----------------------------------------------------------------------------------------------
# LPGD cost ratios
# ----------------------------------------------------------------------------------------------
def reference_costs(ds, seed):
    """Median time of one TruncatedSVD of X (rank r, randomized, default n_iter) and of two
    dense products X @ B with B of shape (p, r)."""
    X = ds.X_tr
    rng = np.random.default_rng(seed)
    B = rng.standard_normal((ds.p, ds.rank))
    tsvd = median_time(lambda: TruncatedSVD(n_components=ds.rank, algorithm="randomized", random_state=seed).fit(X),
                       repeat=7, min_total=0.5)
    two = median_time(lambda: (X @ B, X @ B), repeat=50, min_total=0.5)
    return tsvd, two


# ----------------------------------------------------------------------------------------------
# convergence plot
# ----------------------------------------------------------------------------------------------
def convergence_runs(ds, seed, quick):
    """Histories of LPGD and BCD in both modes run to a tight tolerance (planted data)."""
    runs = {}
    budget = {"lpgd": 40 if quick else 60, "bcd": 200 if quick else 400}
    for mode in ("filter", "feature"):
        for solver in ("lpgd", "bcd"):
            clf = SDLClassifier(n_components=ds.rank, mode=mode, solver=solver, xi=ds.xi, alpha=ALPHA,
                                aux_features=ds.aux_idx, max_iter=budget[solver], tol=0.0, random_state=seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                clf.fit(ds.full("train"), ds.y_tr)
            runs[(f"sdlearn {solver}", mode)] = clf.history_
    return runs


def plot_convergence(plt, runs, path, title):
    fig, axes = plt.subplots(2, 2, figsize=(11, 8), constrained_layout=True)
    styles = {"sdlearn lpgd": "C0", "sdlearn bcd": "C1", "SMF_LPGD": "C2", "SMF_BCD": "C3"}
    for i, mode in enumerate(("filter", "feature")):
        mine = {k[0]: h for k, h in runs.items() if k[1] == mode}
        best = min(min(h["objective"]) for h in mine.values())
        for name, h in mine.items():
            f = np.asarray(h["objective"], dtype=float)
            gap = f - best
            gap = np.where(gap > 0, gap, np.nan)
            it = np.arange(len(f)) + (1 if name.startswith("SMF") else 0)  # sdlearn records the start point
            t = np.asarray(h["time"], dtype=float)
            axes[i, 0].semilogy(it, gap, color=styles.get(name), label=name)
            axes[i, 1].semilogy(t, gap, color=styles.get(name), label=name)
        axes[i, 0].set_title(f"{mode} mode: objective - best seen ({best:.6g})")
        axes[i, 1].set_title(f"{mode} mode: vs wall time")
        axes[i, 0].set_xlabel("iteration")
        axes[i, 1].set_xlabel("seconds")
        axes[i, 1].set_xscale("symlog", linthresh=1e-2)
        for ax in axes[i]:
            ax.set_ylabel("F - F_best")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend()
    fig.suptitle(title)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------
COLUMNS = [
    ("dataset", "dataset", ""),
    ("method", "method", ""),
    ("fit_time_s", "fit s", ".3f"),
    ("n_iter", "iters", "d"),
    ("time_per_iter_ms", "ms/iter", ".2f"),
    ("objective", "objective", ".7g"),
    ("objective_gap", "rel. gap", ".1e"),
    ("accuracy", "accuracy", ".3f"),
    ("f1_macro", "F1 macro", ".3f"),
    ("notes", "notes", ""),
]
RATIO_COLUMNS = [
    ("dataset", "dataset", ""),
    ("method", "method", ""),
    ("fit_time_s", "LPGD fit s", ".4f"),
    ("tsvd_time_s", "TSVD s", ".4f"),
    ("fit_over_tsvd", "fit/TSVD", ".2f"),
    ("time_per_iter_ms", "LPGD ms/iter", ".3f"),
    ("two_products_ms", "2x X@B ms", ".3f"),
    ("iter_over_two_products", "iter/2 products", ".1f"),
]


def main(argv=None):
    run_benchmark(run, __doc__.splitlines()[0], argv)


def run(args):
    quick, seed = args.quick, args.seed
    smf_iters, pilot_iters = (50, 5) if quick else (200, 10)
    dl_max_iter, nmf_max_iter = (5, 200) if quick else (100, 500)
    t_start = time.perf_counter()

    env = environment()
    threads = args.blas_threads if args.blas_threads > 0 else "library default"
    print(f"bench_sdl ({'quick' if quick else 'full'} mode, seed {seed}, BLAS threads: {threads})")
    print("environment: " + ", ".join(f"{k}={v}" for k, v in env.items()))
    SMF, smf_lines = import_smf()
    for line in smf_lines:
        print(line)
    print(NMF_NOTE)
    print(f"Every objective is sdlearn's: sum of logistic losses + xi ||X - W H||_F^2 + ridge (alpha={ALPHA}); "
          "'rel. gap' = (objective - best objective of the same mode on the data set) / |best|.")

    rows, ratio_rows, check_log, plot_runs = [], [], [], {}
    datasets = load_datasets(quick, seed)
    for ds in datasets:
        print(f"\n[{time.perf_counter() - t_start:6.1f}s] {ds.describe()}", flush=True)
        tsvd, two = reference_costs(ds, seed)
        ds_rows = []
        for solver in ("lpgd", "bcd"):
            for mode in ("filter", "feature"):
                row, clf = run_sdl(ds, solver, mode, seed, check_log)
                if solver == "lpgd":
                    row["tsvd_time_s"] = tsvd
                    row["two_products_ms"] = 1000 * two
                    row["fit_over_tsvd"] = row["fit_time_s"] / tsvd
                    row["iter_over_two_products"] = row["time_per_iter_ms"] / (1000 * two)
                    ratio_rows.append(row)
                ds_rows.append(row)
        # LPGD with the warm-started subspace projection (the 'auto' choice is the exact Gram
        # projector at these sizes): only for the cost ratios
        for mode in ("filter", "feature"):
            row, _ = run_sdl(ds, "lpgd", mode, seed, check_log, projection="subspace")
            row.update(tsvd_time_s=tsvd, two_products_ms=1000 * two, fit_over_tsvd=row["fit_time_s"] / tsvd,
                       iter_over_two_products=row["time_per_iter_ms"] / (1000 * two))
            row.pop("mode")  # not in the objective-gap comparison of the main table
            ratio_rows.append(row)
            ds_rows.append(row)
        ds_rows.append(run_sdl_nonnegative(ds, seed))
        for name in ("LogisticRegression", "DictionaryLearning+LR", "NMF+LR"):
            print(f"  [{time.perf_counter() - t_start:6.1f}s] {name}", flush=True)
            ds_rows.append(run_sklearn(ds, name, seed, dl_max_iter, nmf_max_iter))
        if SMF is not None:
            if ds.n_classes != 2:
                print("  SupervisedMF skipped on this data set: its code is binary-only (SMF_LPGD recovers beta "
                      "from the first label row only; SMF_BCD refits beta on the first label row only).")
            else:
                for mode in ("filter", "feature"):
                    print(f"  [{time.perf_counter() - t_start:6.1f}s] SupervisedMF {mode} ({smf_iters} iterations)",
                          flush=True)
                    row, hist = run_smf_lpgd(SMF, ds, mode, smf_iters, pilot_iters, seed)
                    ds_rows.append(row)
                    if ds.name == "planted":
                        plot_runs[("SMF_LPGD", mode)] = hist
                    row, hist = run_smf_bcd(SMF, ds, mode, smf_iters, seed)
                    ds_rows.append(row)
                    if ds.name == "planted":
                        plot_runs[("SMF_BCD", mode)] = hist
        if ds.proba_te is not None:
            bayes = ds.classes[np.argmax(ds.proba_te, axis=1)]
            ds_rows.append({"method": "Bayes rule (true model)", "dataset": ds.name, "objective": float("nan"),
                            **scores(ds, bayes), "notes": "reference"})
        # gap to the best objective of the same mode on this data set
        for mode in ("filter", "feature"):
            same = [r for r in ds_rows if r.get("mode") == mode and np.isfinite(r.get("objective", np.nan))]
            if same:
                best = min(r["objective"] for r in same)
                for r in same:
                    r["objective_gap"] = (r["objective"] - best) / max(abs(best), 1e-12)
        rows.extend(ds_rows)
        if ds.name == "planted":
            plot_runs.update(convergence_runs(ds, seed, quick))

    print()
    print_table(rows, COLUMNS, title="Results (test split 25%, same split for every method)")
    print()
    print_table(ratio_rows, RATIO_COLUMNS,
                title="LPGD cost ratios (targets: fit within ~3x of one TruncatedSVD; an iteration within ~3x of "
                      "two products X @ B). LPGD ms/iter = median of diff(history_['time'])")
    for line in check_log:
        print(line)

    os.makedirs(args.out, exist_ok=True)
    plt = pyplot()
    if plt is None:
        print("matplotlib not installed: no plot written.")
    else:
        path = os.path.join(args.out, "bench_sdl_convergence.png")
        planted = datasets[0]
        plot_convergence(plt, plot_runs, path,
                         f"SDL objective on planted data (n_train={len(planted.y_tr)}, p={planted.p}, "
                         f"r={planted.rank}, xi={planted.xi:g}); sdlearn runs with tol=0")
        print(f"\nconvergence plot: {path}")
    if args.json:
        write_json(args.json, "bench_sdl", rows, args, extra={
            "datasets": [ds.describe() for ds in datasets],
            "supervisedmf": smf_lines,
            "checks": check_log,
        })
        print(f"rows written to {args.json}")
    print(f"total {time.perf_counter() - t_start:.1f}s")


if __name__ == "__main__":
    main()
