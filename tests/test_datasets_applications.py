"""Generators, loaders and metrics of the experiments and applications (fast, offline)."""

import numpy as np
import pytest

from sdlearn import SDLClassifier
from sdlearn.datasets import (
    load_image_folder,
    load_text_csv,
    make_digit_dictionary_classification,
    make_sdl_classification,
    make_topic_corpus,
)
from sdlearn.metrics import effective_filter, linear_rate, objective_gap, subspace_distance, top_words

NEW_PUBLIC = [
    "sdlearn.datasets.make_digit_dictionary_classification",
    "sdlearn.datasets.make_topic_corpus",
    "sdlearn.datasets.load_text_csv",
    "sdlearn.datasets.load_image_folder",
    "sdlearn.metrics.objective_gap",
    "sdlearn.metrics.linear_rate",
    "sdlearn.metrics.subspace_distance",
    "sdlearn.metrics.effective_filter",
    "sdlearn.metrics.top_words",
]


# -- semi-synthetic digits --------------------------------------------------------------------
def test_digit_dictionary_shapes_and_planted_structure():
    d = make_digit_dictionary_classification(n_samples=300, n_atoms_per_digit=4, zoom=2, noise=0.1, random_state=0)
    assert d.data.shape == (300, 256) and d.image_shape == (16, 16)
    assert d.dictionary.shape == (8, 256) and d.discriminative_dictionary.shape == (8, 256)
    assert set(np.unique(d.target)) == {0, 1}
    # features are the codes on the reconstructive atoms plus the noise
    residual = d.data - d.codes @ d.dictionary
    assert abs(residual.std() - 0.1) < 0.01
    # labels follow the logits through the *discriminative* atoms
    logits = d.data @ d.filter + d.intercept
    np.testing.assert_allclose(d.proba, 1 / (1 + np.exp(-logits)), rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(d.filter, d.discriminative_dictionary.T @ d.coef)
    assert d.coef.tolist() == [1.0] * 4 + [-1.0] * 4
    # the two dictionaries are different digits: their spans differ
    assert subspace_distance(d.dictionary, d.discriminative_dictionary) > 0.5
    # atoms are images of the digits: pixels in [0, 1]
    assert d.dictionary.min() >= 0 and d.dictionary.max() <= 1


def test_digit_dictionary_is_reproducible_and_validates():
    a = make_digit_dictionary_classification(n_samples=20, zoom=1, random_state=3)
    b = make_digit_dictionary_classification(n_samples=20, zoom=1, random_state=3)
    np.testing.assert_array_equal(a.data, b.data)
    with pytest.raises(ValueError, match="zoom"):
        make_digit_dictionary_classification(zoom=0)
    with pytest.raises(ValueError, match="label_digits"):
        make_digit_dictionary_classification(label_digits=(1, 2, 3))


def test_sdl_beats_two_step_on_digit_regime():
    """The motivating regime: the reconstructive dictionary misses the label direction."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    d = make_digit_dictionary_classification(n_samples=400, zoom=2, random_state=0)
    X_tr, X_te, y_tr, y_te = d.data[:200], d.data[200:], d.target[:200], d.target[200:]
    two_step = make_pipeline(PCA(3), LogisticRegression(max_iter=2000)).fit(X_tr, y_tr).score(X_te, y_te)
    sdl = SDLClassifier(3, xi=0.01, tol=1e-10, max_iter=200, random_state=0).fit(X_tr, y_tr).score(X_te, y_te)
    assert sdl > two_step + 0.05


# -- topic corpus -----------------------------------------------------------------------------
def test_topic_corpus_structure():
    c = make_topic_corpus(n_documents=400, n_topics=4, n_words=60, rare_fraction=0.1, n_aux=3, random_state=0)
    assert len(c.texts) == 400 and c.data.shape == (400, 60) and c.topics.shape == (4, 60)
    np.testing.assert_allclose(c.topics.sum(axis=1), 1.0)
    np.testing.assert_allclose(c.doc_topics.sum(axis=1), 1.0)
    # the texts hold exactly the counted words
    index = {w: j for j, w in enumerate(c.vocabulary)}
    for i in (0, 17):
        counts = np.zeros(60)
        for w in c.texts[i].split():
            counts[index[w]] += 1
        np.testing.assert_array_equal(counts, c.data[i])
    # a rare class near the requested fraction, driven by the signal topic
    assert 0.05 < c.target.mean() < 0.16
    assert c.doc_topics[c.target == 1, 0].mean() > 2 * c.doc_topics[c.target == 0, 0].mean()
    assert c.aux.shape == (400, 3) and c.aux_names == ["flag_0", "count_1", "flag_2"]
    assert set(np.unique(c.aux[:, 0])) <= {0.0, 1.0}


def test_topic_corpus_validates():
    with pytest.raises(ValueError, match="rare_fraction"):
        make_topic_corpus(rare_fraction=0.7)
    c = make_topic_corpus(n_documents=30, n_words=20, n_aux=0, random_state=0)
    assert c.aux is None and c.aux_names == []


def test_supervised_topics_recover_signal_topic():
    from sklearn.feature_extraction.text import CountVectorizer

    c = make_topic_corpus(n_documents=600, n_topics=4, n_words=80, rare_fraction=0.1, random_state=1)
    vec = CountVectorizer()
    X = vec.fit_transform(c.texts).astype(float)
    clf = SDLClassifier(4, solver="bcd", nonnegative=True, mode="feature", class_weight="balanced",
                        max_iter=100, tol=1e-8, random_state=0).fit(X, c.target, X_aux=c.aux)
    vocab = vec.get_feature_names_out()
    topics = top_words(clf.components_, vocab, n_words=5)
    assert len(topics) == 4 and all(len(t) == 5 for t in topics)
    truth = top_words(c.topics[:1], c.vocabulary, n_words=5)[0]
    # one atom is the signal topic, and it pushes towards the rare class
    best = max(range(4), key=lambda k: len(set(topics[k]) & set(truth)))
    assert len(set(topics[best]) & set(truth)) >= 4
    assert clf.coef_[0, best] == clf.coef_[0].max()


# -- loaders ----------------------------------------------------------------------------------
def test_load_text_csv(tmp_path):
    path = tmp_path / "docs.csv"
    path.write_text(
        'text,label,has_logo,industry,salary\n'
        '"great pay, work from home",fraud,0,sales,\n'
        'engineer role in a team,real,1,tech,50\n'
        'nurse shift,real,1,health,40\n',
        encoding="utf-8",
    )
    d = load_text_csv(path)
    assert d.texts[0] == "great pay, work from home"
    assert d.target.tolist() == ["fraud", "real", "real"]
    assert d.aux_names == ["has_logo", "industry=sales", "industry=tech", "industry=health", "salary"]
    np.testing.assert_array_equal(d.aux[:, 0], [0, 1, 1])
    np.testing.assert_array_equal(d.aux[:, 1:4], np.eye(3))
    np.testing.assert_array_equal(d.aux[:, 4], [0, 50, 40])
    assert d.aux_missing == 1
    only = load_text_csv(path, aux_columns=["has_logo"])
    assert only.aux.shape == (3, 1)
    assert load_text_csv(path, aux_columns=[]).aux is None
    with pytest.raises(ValueError, match="body"):
        load_text_csv(path, text_column="body")
    with pytest.raises(ValueError, match="nope"):
        load_text_csv(path, aux_columns=["nope"])


def test_load_text_csv_annotations_and_missing_labels(tmp_path):
    path = tmp_path / "votes.csv"
    path.write_text("text,a1,a2,n\nso good,pos,,3\nbad,neg,neg,\n", encoding="utf-8")
    d = load_text_csv(path, annotation_columns=["a1", "a2"])  # no 'label' column: labels from the votes
    assert d.target is None and d.annotations == [["pos", None], ["neg", "neg"]]
    assert d.aux_names == ["n"] and d.columns == ["text", "a1", "a2", "n"]
    with pytest.raises(ValueError, match="label"):
        load_text_csv(path)
    (tmp_path / "empty.csv").write_text("text,label\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no records"):
        load_text_csv(tmp_path / "empty.csv")


def test_load_text_csv_integer_labels_and_delimiter(tmp_path):
    path = tmp_path / "docs.tsv"
    path.write_text("body\ty\nfoo bar\t1\nbaz\t0\n", encoding="utf-8")
    d = load_text_csv(path, text_column="body", target_column="y", delimiter="\t")
    assert d.target.dtype.kind == "i" and d.target.tolist() == [1, 0] and d.aux is None


def test_load_image_folder(tmp_path):
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    for name, n in (("NORMAL", 2), ("PNEUMONIA", 3)):
        (tmp_path / name).mkdir()
        for i in range(n):
            plt.imsave(tmp_path / name / f"img{i}.png", rng.random((12, 20, 3)))
    (tmp_path / "NORMAL" / "notes.txt").write_text("not an image")
    d = load_image_folder(tmp_path, size=(6, 10))
    assert d.data.shape == (5, 60) and d.images.shape == (5, 6, 10)
    assert d.target.tolist() == [0, 0, 1, 1, 1] and d.target_names == ["NORMAL", "PNEUMONIA"]
    assert d.data.min() >= 0 and d.data.max() <= 1
    # a constant image stays constant after resizing
    (tmp_path / "PNEUMONIA" / "flat.png").unlink(missing_ok=True)
    plt.imsave(tmp_path / "PNEUMONIA" / "zflat.png", np.full((9, 9), 0.5), cmap="gray", vmin=0, vmax=1)
    d = load_image_folder(tmp_path, size=(4, 4))
    assert np.ptp(d.images[-1]) < 0.02
    with pytest.raises(ValueError, match="subfolders"):
        load_image_folder(tmp_path / "NORMAL")


# -- metrics ----------------------------------------------------------------------------------
def test_subspace_distance_invariances():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((3, 10))
    G = rng.standard_normal((3, 3))
    assert subspace_distance(A, G @ A) < 1e-10
    B = rng.standard_normal((3, 10))
    assert 0 < subspace_distance(A, B) <= 1
    with pytest.raises(ValueError):
        subspace_distance(A, B[:, :5])


def test_effective_filter_invariant_and_matches_scores():
    rng = np.random.default_rng(1)
    W = rng.standard_normal((3, 8))  # rows are atoms
    coef = rng.standard_normal((2, 3))
    G = rng.standard_normal((3, 3))
    # feature mode: atoms W -> G^T-mixed, codes and beta follow; the filter is unchanged
    np.testing.assert_allclose(effective_filter(G @ W, coef @ G.T), effective_filter(W, coef))
    # least-squares codes scored by beta equal the filter applied to x
    x = rng.standard_normal(8)
    codes = np.linalg.lstsq(W.T, x, rcond=None)[0]
    np.testing.assert_allclose(coef @ codes, effective_filter(W, coef) @ x)
    # filter mode: scores beta^T W^T x
    np.testing.assert_allclose(effective_filter(W, coef, mode="filter") @ x, coef @ (W @ x))
    with pytest.raises(ValueError, match="mode"):
        effective_filter(W, coef, mode="other")


def test_objective_gap_and_rate():
    gaps = objective_gap([2.0 + 0.3**k for k in range(30)] + [2.0])
    assert gaps[-1] == 0
    assert abs(linear_rate(gaps) - 0.3) < 1e-6
    assert np.isnan(linear_rate([1.0, 0.5]))
    np.testing.assert_allclose(objective_gap([3.0, 1.0], relative=False), [2.0, 0.0])


def test_lpgd_rate_on_planted_data():
    """Plain LPGD (the theory's algorithm) converges linearly: the claim the theory benchmark
    measures. The default (with the Newton refit) is faster still, too fast for a rate fit."""
    import warnings

    from sdlearn import lpgd

    d = make_sdl_classification(n_samples=300, n_features=30, n_components=3, n_aux=1, random_state=0)
    kw = dict(n_components=3, X_aux=d.aux, xi=d.xi, tol=0, max_iter=300, acceleration=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = lpgd(d.data, d.target, classifier_steps=0, **kw)
        default = lpgd(d.data, d.target, **kw)
    assert linear_rate(objective_gap(plain.history["objective"])) < 0.5
    assert np.min(objective_gap(default.history["objective"])[:5]) < 1e-10


def test_top_words():
    assert top_words([[0.0, 2.0, 1.0]], np.array(["a", "b", "c"]), n_words=5) == [["b", "c", "a"]]
    with pytest.raises(ValueError):
        top_words([[1.0, 2.0]], ["a"])


# -- docstrings -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NEW_PUBLIC)
def test_docstrings_numpydoc(name):
    import importlib

    validate = pytest.importorskip("numpydoc.validate").validate
    module, _, attr = name.rpartition(".")
    assert callable(getattr(importlib.import_module(module), attr))
    ignored = {"ES01", "SA01", "EX01", "RT02"}
    errors = [(c, m) for c, m in validate(name)["errors"] if c not in ignored]
    assert not errors, errors
