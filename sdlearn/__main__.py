"""Demo: supervised dictionary learning on scikit-learn's bundled digits.

Run ``python -m sdlearn`` (``--plot PATH`` also draws accuracy against reconstruction error).
Fits SDLClassifier with rank 10 on the 8x8 digits and compares it, on the same split, with
logistic regression on all 64 pixels and with the two-step pipelines that first compress to
10 components without looking at the labels (PCA, dictionary learning) and then classify.
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA, MiniBatchDictionaryLearning
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from . import SDLClassifier

RANK = 10


def _reconstruction_error(model, X):
    """Relative squared error of the model's rank-10 reconstruction (``nan`` if it has none)."""
    if hasattr(model, "inverse_transform") and hasattr(model, "transform"):
        rebuilt = model.inverse_transform(model.transform(X))
        return float(np.sum((X - rebuilt) ** 2) / np.sum(X**2))
    return float("nan")


def _candidates():
    lr = dict(max_iter=5000)
    yield "LogisticRegression (64 pixels)", None, LogisticRegression(**lr)
    yield "PCA(10) + LogisticRegression", PCA(RANK), LogisticRegression(**lr)
    yield (
        "DictionaryLearning(10) + LogisticRegression",
        MiniBatchDictionaryLearning(RANK, alpha=0.1, max_iter=50, random_state=0),
        LogisticRegression(**lr),
    )
    for xi in (0.01, 0.1, 1.0):
        model = SDLClassifier(RANK, mode="filter", xi=xi, random_state=0)
        yield f"SDL filter, LPGD, xi={xi}", None, model
    yield "SDL feature, LPGD, xi=0.1", None, SDLClassifier(RANK, mode="feature", xi=0.1, random_state=0)
    yield "SDL filter, BCD, xi=0.1", None, SDLClassifier(RANK, solver="bcd", xi=0.1, random_state=0)


def run(plot=None):
    """Fit every candidate, print the comparison table and optionally save a plot."""
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    print(f"digits: {len(X_train)} training and {len(X_test)} test images, 64 pixels, 10 classes; rank {RANK}\n")
    header = f"{'method':46s} {'accuracy':>8s} {'F1':>6s} {'recon err':>9s} {'fit [s]':>8s}"
    print(header)
    print("-" * len(header))
    rows = []
    for name, compressor, classifier in _candidates():
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = make_pipeline(compressor, classifier) if compressor is not None else classifier
            model.fit(X_train, y_train)
        seconds = time.perf_counter() - start
        predicted = model.predict(X_test)
        accuracy = float(np.mean(predicted == y_test))
        f1 = f1_score(y_test, predicted, average="macro")
        reducer = compressor if compressor is not None else classifier
        error = _reconstruction_error(reducer, X_test)
        rows.append((name, accuracy, error))
        print(f"{name:46s} {accuracy:8.3f} {f1:6.3f} {error:9.3f} {seconds:8.2f}")
    print(
        "\nrecon err: relative squared error of the rank-10 reconstruction of the test images.\n"
        "Small xi favours classification, large xi reconstruction; two-step pipelines compress\n"
        "without the labels. LogisticRegression uses all 64 pixels (no compression)."
    )
    if plot:
        _plot(rows, plot)
        print(f"\nplot written to {plot}")


def _plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, accuracy, error in rows:
        if np.isnan(error):
            ax.axhline(accuracy, color="gray", linestyle="--", label=name)
        else:
            ax.scatter(error, accuracy, label=name, marker="o" if name.startswith("SDL") else "s")
    ax.set_xlabel("relative reconstruction error (test)")
    ax.set_ylabel("test accuracy")
    ax.set_title("digits, rank 10: accuracy vs reconstruction")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None):
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m sdlearn", description=__doc__.splitlines()[0])
    parser.add_argument("--plot", metavar="PATH", help="also save accuracy vs reconstruction error as a PNG")
    args = parser.parse_args(argv)
    run(plot=args.plot)


if __name__ == "__main__":
    main()
