"""P2C against label-noise baselines: accuracy and calibration with each preference source.

Data: :func:`neural.text.make_preference_text`, 3 classes, texts whose class cues are mixed
with a confuser class's cues according to a latent clarity, and 5 simulated annotators who
disagree on unclear texts. Training labels are the annotators' majority vote (noisy); the test
set is scored against the true classes. Regimes:

* ``clean``: skilled annotators (the generator's defaults), a few percent of wrong labels;
* ``noisy``: weak, biased annotators (skill 0.5-3, bias sd 1), about a fifth of wrong labels;
* a small (``n400``) and, in full mode, a larger training set.

Methods, all the same :class:`neural.text.P2CClassifier` (embedding-bag encoder, dim 32, same
epochs, learning rate and seeds), so only the loss differs:

* ``hard``: cross-entropy on the majority labels (the baseline);
* ``soft``: cross-entropy on the annotators' soft labels;
* ``smooth``: label smoothing 0.1;
* ``P2C extractive``: preferences extracted from the soft labels, random / disagreement /
  inconsistency-based pair sampling; the consistency term is the label hinge (the paper's);
* ``P2C extr. margin``: the same with the reference code's soft-label margin term over all
  classes (``consistency="margin"``, its ``--pair_loss``) instead of the hinge;
* ``P2C extr. margin+both``: the margin term and both texts of every pair classified
  (``classify_partners=True``);
* ``P2C reference loss``: the loss side of ``reference_params("extractive")`` (margin term,
  both texts classified, disagreement sampling) at this benchmark's training budget;
* ``P2C reference``: ``P2CClassifier(**reference_params("extractive"))`` as the reference
  ships it (batch 16, constant learning rate, 20 epochs): a different budget, so its
  difference to ``hard`` also holds the budget;
* ``P2C crowd``: 2 explicit pairs per text, each judged by 3 noisy simulated workers
  (the "subjective" source);
* ``P2C generative``: 2 pairs per text answered by a scoring function (a noisy cue-word
  counter standing in for a language model);
* ``P2C oracle``: 2 pairs per text with the true intensity ordering (an upper reference).

Metrics: test accuracy against the true class and expected calibration error (15 equal-width
bins of the top-class confidence, no temperature scaling), mean and standard deviation over
seeds, and the difference to ``hard`` in the same seed; ``conf-acc`` is the mean top-class
confidence minus the accuracy (positive: overconfident, negative: underconfident);
``ECE(TS)`` is the ECE after temperature scaling fitted (NLL) on a separate validation set
with majority (noisy) labels, as the paper reports it, and ``T`` the geometric mean
temperature.

Usage::

    python benchmarks/bench_p2c.py --quick   # about 35 s on 2 cores (full mode: about 5 min)
    python benchmarks/bench_p2c.py --json benchmarks/results/bench_p2c.json
"""

import os
import sys
import time
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import blas_threads, git_revision, make_parser, print_table, pyplot, write_json  # noqa: E402

from neural.text import (  # noqa: E402
    CueWordScorer,
    P2CClassifier,
    make_preference_text,
    reference_params,
    simulate_preferences,
)

REGIMES = {
    "clean": {},
    "noisy": {"annotator_skill": (0.5, 3.0), "annotator_bias": 1.0},
}

AUX_OFF = {"lambda_pref": 0.0, "lambda_div": 0.0, "lambda_cons": 0.0}
# the parameters of reference_params() that shape the loss and the pairs, not the training budget
LOSS_KEYS = {"n_pref_heads", "lambda_cls", "lambda_pref", "lambda_div", "lambda_cons",
             "consistency", "classify_partners", "sampling"}


def methods(data, seed):
    """(name, estimator parameters, fit keyword arguments) of every method."""
    crowd = simulate_preferences(data.intensity, data.y, n_pairs_per_sample=2, noise=0.15,
                                 n_workers=3, random_state=seed)
    oracle = simulate_preferences(data.intensity, data.y, n_pairs_per_sample=2,
                                  random_state=seed)
    scorer = CueWordScorer(data.cue_words, noise=0.05, random_state=seed)
    soft = {"soft_labels": data.soft_labels}
    return [
        ("hard", AUX_OFF, {}),
        ("soft", {**AUX_OFF, "label_target": "soft"}, soft),
        ("smooth 0.1", {**AUX_OFF, "label_smoothing": 0.1}, {}),
        ("P2C extractive", {}, soft),
        ("P2C extr. disagree", {"sampling": "disagreement"}, soft),
        ("P2C extr. inconsist", {"sampling": "inconsistency"}, soft),
        ("P2C extr. margin", {"consistency": "margin"}, soft),
        ("P2C extr. margin+both", {"consistency": "margin", "classify_partners": True}, soft),
        ("P2C reference loss", {k: v for k, v in reference_params().items() if k in LOSS_KEYS},
         soft),
        ("P2C reference", reference_params(), soft),
        ("P2C crowd", {}, {"preferences": crowd}),
        ("P2C generative", {}, {"preferences": scorer}),
        ("P2C oracle", {}, {"preferences": oracle}),
    ]


def ece(proba, y, n_bins=15):
    conf = proba.max(1)
    correct = proba.argmax(1) == y
    edges = np.linspace(0, 1, n_bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            total += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(total)


def temperature(proba, y):
    """Temperature minimising the NLL of ``y`` (grid search on log T)."""
    logp = np.log(np.clip(proba, 1e-12, None))
    best, best_t = np.inf, 1.0
    for t in np.exp(np.linspace(np.log(0.05), np.log(20), 121)):
        z = logp / t
        z = z - z.max(1, keepdims=True)
        nll = -(z[np.arange(len(y)), y] - np.log(np.exp(z).sum(1))).mean()
        if nll < best:
            best, best_t = nll, t
    return best_t


def scaled(proba, t):
    z = np.log(np.clip(proba, 1e-12, None)) / t
    z = np.exp(z - z.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True)


def run(args):
    quick = args.quick
    seeds = [args.seed + k for k in range(3 if quick else 5)]
    sizes = [400] if quick else [400, 1500]
    n_test = 1500 if quick else 3000
    epochs = 15
    rows, raw = [], []
    warm = make_preference_text(64, 3, random_state=0)  # first-call overhead out of the timings
    P2CClassifier(max_iter=1, device="cpu").fit(warm.texts, warm.y, soft_labels=warm.soft_labels)
    for regime, gen in REGIMES.items():
        for n in sizes:
            dataset = f"{regime}-n{n}"
            per = {}
            for seed in seeds:
                data = make_preference_text(n, 3, random_state=1000 * seed + n, **gen)
                test = make_preference_text(n_test, 3, random_state=1000 * seed + 7, **gen)
                # validation texts with majority (noisy) labels, for temperature scaling only
                val = make_preference_text(max(n // 2, 200), 3, random_state=1000 * seed + 8,
                                           **gen)
                noise = float(np.mean(data.y != data.y_true))
                for name, params, fit_kw in methods(data, seed):
                    est = P2CClassifier(**{**dict(max_iter=epochs, embedding_dim=32,
                                                  pref_hidden=32, batch_size=32,
                                                  learning_rate_init=3e-3),
                                           **params, "random_state": seed, "device": "cpu"})
                    t0 = time.perf_counter()
                    est.fit(data.texts, data.y, **fit_kw)
                    fit_time = time.perf_counter() - t0
                    proba = est.predict_proba(test.texts)
                    pred = est.classes_[proba.argmax(1)]
                    acc = float(np.mean(pred == test.y_true))
                    e = ece(proba, np.searchsorted(est.classes_, test.y_true))
                    gap = float(proba.max(1).mean()) - acc  # > 0: overconfident
                    t = temperature(est.predict_proba(val.texts),
                                    np.searchsorted(est.classes_, val.y))
                    e_ts = ece(scaled(proba, t), np.searchsorted(est.classes_, test.y_true))
                    per.setdefault(name, []).append((acc, e, fit_time, noise, gap, e_ts, t))
                    raw.append({"method": name, "dataset": dataset, "seed": seed,
                                "accuracy": acc, "ece": e, "confidence_gap": gap,
                                "ece_ts": e_ts, "temperature": t,
                                "fit_time": fit_time, "label_noise": noise})
            base = np.array(per["hard"])
            for name, vals in per.items():
                v = np.array(vals)
                rows.append({
                    "method": name, "dataset": dataset, "n_seeds": len(seeds),
                    "accuracy": v[:, 0].mean(), "accuracy_std": v[:, 0].std(),
                    "ece": v[:, 1].mean(), "ece_std": v[:, 1].std(),
                    "d_accuracy": (v[:, 0] - base[:, 0]).mean(),
                    "d_accuracy_std": (v[:, 0] - base[:, 0]).std(),
                    "d_ece": (v[:, 1] - base[:, 1]).mean(),
                    "confidence_gap": v[:, 4].mean(),
                    "ece_ts": v[:, 5].mean(), "d_ece_ts": (v[:, 5] - base[:, 5]).mean(),
                    "temperature": float(np.exp(np.log(v[:, 6]).mean())),
                    "fit_time_ratio": v[:, 2].mean() / base[:, 2].mean(),
                    "label_noise": v[:, 3].mean(),
                })
            print_table([r for r in rows if r["dataset"] == dataset], [
                ("method", "method", "s"), ("dataset", "data", "s"),
                ("accuracy", "acc", ".3f"), ("accuracy_std", "sd", ".3f"),
                ("d_accuracy", "d acc", "+.3f"), ("d_accuracy_std", "sd", ".3f"),
                ("ece", "ECE", ".3f"), ("d_ece", "d ECE", "+.3f"),
                ("confidence_gap", "conf-acc", "+.3f"),
                ("ece_ts", "ECE(TS)", ".3f"), ("d_ece_ts", "d ECE(TS)", "+.3f"),
                ("temperature", "T", ".2f"),
                ("fit_time_ratio", "time/hard", ".1f"),
            ], title=f"\n{dataset}: label noise {rows[-1]['label_noise']:.1%}, {len(seeds)} seeds, "
                     f"{epochs} epochs, test n={n_test} scored on true classes")
    return rows, raw


def plot(rows, out):
    plt = pyplot()
    if plt is None:
        return None
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    names = list(dict.fromkeys(r["method"] for r in rows))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    width = 0.8 / len(datasets)
    x = np.arange(len(names))
    for k, ds in enumerate(datasets):
        sub = {r["method"]: r for r in rows if r["dataset"] == ds}
        for ax, key in zip(axes, ("d_accuracy", "d_ece", "d_ece_ts")):
            vals = [sub[m][key] for m in names]
            err = [sub[m].get(key + "_std", 0.0) for m in names] if key == "d_accuracy" else None
            ax.bar(x + (k - (len(datasets) - 1) / 2) * width, vals, width, yerr=err, label=ds)
    for ax, title in zip(axes, ("test accuracy - hard-label baseline (higher is better)",
                                "ECE - hard-label baseline (lower is better)",
                                "ECE after temperature scaling - baseline")):
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks(x)
        ax.set_xticklabels(names, rotation=40, ha="right", fontsize=8)
        ax.set_title(title, fontsize=9)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "bench_p2c.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main():
    parser = make_parser(__doc__.splitlines()[0])
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    start = time.perf_counter()
    with blas_threads(args.blas_threads):
        rows, raw = run(args)
    path = plot(rows, args.out)
    print(f"\nplot: {path}   total time {time.perf_counter() - start:.0f} s   "
          f"code {git_revision()}")
    if args.json:
        write_json(args.json, "bench_p2c", rows, args, extra={"per_seed": raw})


if __name__ == "__main__":
    main()
