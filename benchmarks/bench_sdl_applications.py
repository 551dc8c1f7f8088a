"""Benchmark: SDL applications (supervised topics for imbalanced documents; image classification).

(a) Imbalanced document classification by supervised topic modelling. Data: the synthetic
    corpus of :func:`sdlearn.datasets.make_topic_corpus` (a rare class of about 5%, metadata
    covariates that carry signal), or your own CSV with ``--csv PATH`` (columns: the text
    ``--text-column``, the label ``--label-column``, every other column a covariate; see
    :func:`sdlearn.datasets.load_text_csv`). Words are counted with CountVectorizer on the
    training split, and also re-weighted with TfidfTransformer. Methods, all with
    ``class_weight='balanced'`` and the (standardised) covariates: nonnegative SDL
    (``solver='bcd', nonnegative=True``; topics = atoms) in feature and filter mode,
    LogisticRegression on words + covariates, NMF topics + LogisticRegression. Metrics on the
    test split: F1 of the rare class (threshold of each model's ``predict``), ROC AUC and
    average precision. The SDL topics are printed as top words.

(b) Image classification: scikit-learn's bundled digits (the stand-in for chest X-rays), or
    your own folder of images with ``--image-folder PATH`` (one subfolder per class; see
    :func:`sdlearn.datasets.load_image_folder`). SDL (LPGD, filter) and supervised NMF (BCD,
    nonnegative) against LogisticRegression, PCA + LR and NMF + LR; the learnt atoms are written
    as an image grid (PNG).

Run ``python benchmarks/bench_sdl_applications.py --quick`` (a minute or two on 2 cores).
"""

import os
import sys
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import NMF, PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, average_precision_score, f1_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import run_benchmark, environment, make_parser, print_table, pyplot, timed, write_json  # noqa: E402

from sdlearn import SDLClassifier  # noqa: E402
from sdlearn.datasets import load_image_folder, load_text_csv, make_topic_corpus  # noqa: E402
from sdlearn.metrics import top_words  # noqa: E402

# see bench_sdl_theory.TOL: the relative-decrease stop of the solvers is measured on the whole
# objective, which the reconstruction term dominates; a tiny tol and a fixed budget avoid it
TOL = 1e-10


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, **kwargs)


# ----------------------------------------------------------------------------------------------
# (a) documents
# ----------------------------------------------------------------------------------------------
def load_documents(args):
    if args.csv:
        d = load_text_csv(args.csv, text_column=args.text_column, target_column=args.label_column)
        classes = np.unique(d.target)
        if len(classes) != 2:
            raise SystemExit(f"--csv: expected a binary label, got classes {classes.tolist()}")
        # the rarer class is the positive one
        rare = classes[np.argmin([np.sum(d.target == c) for c in classes])]
        y = (d.target == rare).astype(int)
        return d.texts, y, d.aux, d.aux_names, None, f"CSV {args.csv} (positive class: {rare!r})"
    n = 2000 if args.quick else 6000
    c = make_topic_corpus(n_documents=n, n_topics=6, n_words=400, document_length=50, topic_signal=3.0,
                          n_aux=3, rare_fraction=0.05, random_state=args.seed)
    return (c.texts, c.target, c.aux, c.aux_names, c,
            f"make_topic_corpus(n_documents={n}, n_topics=6, n_words=400, length 50, rare 5%, 3 covariates)")


def binary_scores(y, score, pred):
    return {
        "f1_rare": float(f1_score(y, pred)),
        "roc_auc": float(roc_auc_score(y, score)),
        "avg_precision": float(average_precision_score(y, score)),
    }


def experiment_documents(args):
    texts, y, aux, aux_names, corpus, description = load_documents(args)
    idx = np.arange(len(y))
    tr, te = train_test_split(idx, test_size=0.3, stratify=y, random_state=args.seed)
    vectorizer = CountVectorizer(min_df=2)
    C_tr = vectorizer.fit_transform([texts[i] for i in tr]).astype(float)
    C_te = vectorizer.transform([texts[i] for i in te]).astype(float)
    vocabulary = vectorizer.get_feature_names_out()
    tfidf = TfidfTransformer().fit(C_tr)
    reps = {"counts": (C_tr, C_te), "tf-idf": (tfidf.transform(C_tr), tfidf.transform(C_te))}
    if aux is not None:
        scaler = StandardScaler().fit(aux[tr])
        A_tr, A_te = scaler.transform(aux[tr]), scaler.transform(aux[te])
    else:
        A_tr = A_te = None
    y_tr, y_te = y[tr], y[te]
    r = 6
    print(f"  {description}: {len(tr)} train / {len(te)} test documents, {len(vocabulary)} words, "
          f"positives {y.mean():.1%}, covariates {aux_names}")
    rows, topics = [], {}

    def stack(X, A):
        import scipy.sparse as sp

        return X if A is None else sp.hstack([X, sp.csr_matrix(A)]).tocsr()

    for rep, (X_tr, X_te) in reps.items():
        lr = lambda: LogisticRegression(max_iter=5000, class_weight="balanced")  # noqa: E731
        model, seconds, _ = timed(lambda: lr().fit(stack(X_tr, A_tr), y_tr), repeat=1)
        Z = stack(X_te, A_te)
        rows.append({"method": "LogisticRegression", "dataset": f"documents ({rep})", "fit_time_s": seconds,
                     **binary_scores(y_te, model.decision_function(Z), model.predict(Z))})

        def nmf_lr():
            nmf = NMF(r, max_iter=1000, random_state=args.seed).fit(X_tr)
            H_tr, H_te = nmf.transform(X_tr), nmf.transform(X_te)
            s = StandardScaler().fit(H_tr)
            F_tr = s.transform(H_tr) if A_tr is None else np.hstack([s.transform(H_tr), A_tr])
            F_te = s.transform(H_te) if A_te is None else np.hstack([s.transform(H_te), A_te])
            return nmf, lr().fit(F_tr, y_tr), F_te

        (nmf, clf, F_te), seconds, _ = timed(lambda: quiet(nmf_lr), repeat=1)
        rows.append({"method": f"NMF({r})+LR", "dataset": f"documents ({rep})", "fit_time_s": seconds,
                     **binary_scores(y_te, clf.decision_function(F_te), clf.predict(F_te))})
        if rep == "counts":
            topics["NMF"] = (nmf.components_, None)

        for mode in ("feature", "filter"):
            for use_aux in ((True, False) if mode == "feature" else (True,)):
                def fit():
                    clf = SDLClassifier(r, mode=mode, solver="bcd", nonnegative=True, xi=1.0,
                                        class_weight="balanced", max_iter=300 if args.quick else 600, tol=TOL,
                                        random_state=args.seed)
                    return quiet(clf.fit, X_tr, y_tr, X_aux=A_tr if use_aux else None)

                clf, seconds, _ = timed(fit, repeat=1)
                a_te = A_te if use_aux else None
                name = f"SDL bcd nonneg {mode}" + ("" if use_aux else " (no covariates)")
                rows.append({"method": name, "dataset": f"documents ({rep})", "fit_time_s": seconds,
                             "n_iter": clf.n_iter_,
                             **binary_scores(y_te, clf.decision_function(X_te, X_aux=a_te), clf.predict(X_te, X_aux=a_te))})
                if rep == "counts" and use_aux:
                    topics[f"SDL {mode}"] = (clf.components_, clf.coef_[0])
    return rows, topics, vocabulary, corpus


def print_topics(topics, vocabulary, corpus, n_words=8):
    for name, (components, coef) in topics.items():
        print(f"\n  {name} topics (top {n_words} words of each atom" + (", weight of the atom for the rare class)" if coef is not None else ")"))
        for k, words in enumerate(top_words(components, vocabulary, n_words)):
            weight = "" if coef is None else f"{coef[k]:+7.2f}  "
            print(f"    atom {k}: {weight}{' '.join(words)}")
    if corpus is not None:
        print(f"\n  true signal topic (drives the rare class): {' '.join(top_words(corpus.topics[:1], corpus.vocabulary, n_words)[0])}")
        for name, (components, coef) in topics.items():
            # cosine between each atom and the true signal topic, on the shared vocabulary
            index = {w: j for j, w in enumerate(corpus.vocabulary)}
            cols = [index[w] for w in vocabulary]
            truth = corpus.topics[0][cols]
            atoms = np.asarray(components)
            cos = atoms @ truth / (np.linalg.norm(atoms, axis=1) * np.linalg.norm(truth) + 1e-300)
            print(f"  {name}: best cosine between an atom and the signal topic = {cos.max():.3f} (atom {int(cos.argmax())})")


# ----------------------------------------------------------------------------------------------
# (b) images
# ----------------------------------------------------------------------------------------------
def load_images(args):
    if args.image_folder:
        d = load_image_folder(args.image_folder, size=(args.image_size, args.image_size))
        return d.data, d.target, d.image_shape, f"images from {args.image_folder} ({len(d.target_names)} classes)"
    d = load_digits()
    return d.data / 16.0, d.target, (8, 8), "load_digits (8x8, 10 classes, pixels / 16)"


def experiment_images(args):
    X, y, shape, description = load_images(args)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, stratify=y, random_state=args.seed)
    r = 20 if not args.image_folder else args.image_components
    print(f"  {description}: {len(y_tr)} train / {len(y_te)} test, p={X.shape[1]}, r={r}")
    rows, atoms = [], {}
    lr = lambda: LogisticRegression(max_iter=5000)  # noqa: E731
    models = {
        "LogisticRegression": lambda: lr(),
        f"PCA({r})+LR": lambda: make_pipeline(PCA(r, random_state=args.seed), StandardScaler(), lr()),
        f"NMF({r})+LR": lambda: make_pipeline(NMF(r, max_iter=1000, random_state=args.seed), StandardScaler(), lr()),
        "SDL lpgd filter": lambda: SDLClassifier(r, mode="filter", xi=0.1, tol=TOL, max_iter=300, random_state=args.seed),
        "SDL bcd nonneg filter": lambda: SDLClassifier(r, mode="filter", solver="bcd", nonnegative=True, xi=0.1,
                                                       tol=TOL, max_iter=300, random_state=args.seed),
    }
    n_classes = len(np.unique(y))
    for name, make in models.items():
        model, seconds, _ = timed(lambda: quiet(make().fit, X_tr, y_tr), repeat=1)
        pred = model.predict(X_te)
        row = {"method": name, "dataset": "images", "fit_time_s": seconds,
               "accuracy": float(accuracy_score(y_te, pred)), "f1_macro": float(f1_score(y_te, pred, average="macro"))}
        if n_classes == 2:
            score = model.decision_function(X_te)
            row["roc_auc"] = float(roc_auc_score(y_te, score))
        rows.append(row)
        if name.startswith("SDL"):
            atoms[name] = model.components_
        elif name.startswith("PCA") or name.startswith("NMF"):
            atoms[name] = model[0].components_
    return rows, atoms, shape


def plot_atoms(plt, atoms, shape, path, n_show=20):
    names = list(atoms)
    fig, axes = plt.subplots(len(names), n_show, figsize=(n_show * 0.7, len(names) * 0.9), constrained_layout=True)
    for i, name in enumerate(names):
        comps = atoms[name]
        for j in range(n_show):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j < len(comps):
                img = comps[j].reshape(shape)
                lim = np.abs(img).max() or 1.0
                signed = img.min() < 0
                ax.imshow(img, cmap="RdBu_r" if signed else "gray_r", vmin=-lim if signed else 0, vmax=lim)
            if j == 0:
                ax.set_ylabel(name, fontsize=6, rotation=0, ha="right", va="center")
    fig.suptitle("Learnt atoms (one row per method)")
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------
DOC_COLUMNS = [
    ("dataset", "data", ""), ("method", "method", ""), ("f1_rare", "F1 (rare)", ".3f"), ("roc_auc", "ROC AUC", ".3f"),
    ("avg_precision", "avg precision", ".3f"), ("fit_time_s", "fit s", ".2f"), ("n_iter", "iters", "d"),
]
IMG_COLUMNS = [
    ("dataset", "data", ""), ("method", "method", ""), ("accuracy", "accuracy", ".3f"), ("f1_macro", "F1 macro", ".3f"),
    ("roc_auc", "ROC AUC", ".3f"), ("fit_time_s", "fit s", ".2f"),
]


def main(argv=None):
    parser = make_parser(__doc__.splitlines()[0])
    parser.add_argument("--csv", default=None, help="CSV of documents (text, label and covariate columns)")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--image-folder", default=None, help="folder with one subfolder of images per class")
    parser.add_argument("--image-size", type=int, default=32, help="images are resized to SIZE x SIZE")
    parser.add_argument("--image-components", type=int, default=20, help="atoms for --image-folder")
    run_benchmark(run, None, argv, parser)


def run(args):
    t0 = time.perf_counter()
    threads = args.blas_threads if args.blas_threads > 0 else "library default"
    print(f"bench_sdl_applications ({'quick' if args.quick else 'full'} mode, seed {args.seed}, BLAS threads: {threads})")
    print("environment: " + ", ".join(f"{k}={v}" for k, v in environment().items()))
    os.makedirs(args.out, exist_ok=True)
    plt = pyplot()

    print(f"\n[{time.perf_counter() - t0:6.1f}s] (a) imbalanced documents, supervised topics", flush=True)
    doc_rows, topics, vocabulary, corpus = experiment_documents(args)
    print()
    print_table(doc_rows, DOC_COLUMNS, title=(
        "Documents, 70/30 stratified split; every method class_weight='balanced' with the standardised covariates "
        "(except the 'no covariates' row); SDL: r=6, xi=1, nonnegative BCD; F1 at each model's own predict()"))
    print_topics(topics, vocabulary, corpus)

    print(f"\n[{time.perf_counter() - t0:6.1f}s] (b) images", flush=True)
    img_rows, atoms, shape = experiment_images(args)
    print()
    print_table(img_rows, IMG_COLUMNS, title="Images, 70/30 stratified split; SDL xi=0.1 (not tuned)")
    if plt is not None:
        path = os.path.join(args.out, "applications_atoms.png")
        plot_atoms(plt, atoms, shape, path)
        print(f"\natoms: {path}")
    if args.json:
        write_json(args.json, "bench_sdl_applications", doc_rows + img_rows, args)
        print(f"rows written to {args.json}")
    print(f"total {time.perf_counter() - t0:.1f}s")


if __name__ == "__main__":
    main()
