"""P2C: losses, pair sampling, preference sources, data, and the P2CClassifier estimator."""

import json
import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.utils.estimator_checks import (
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
    parametrize_with_checks,
)
from sklearn.utils.validation import validate_data

from neural.text import (
    CueWordScorer,
    P2CClassifier,
    SentenceEncoder,
    Tokenizer,
    check_preference_pairs,
    consistency_loss,
    disagreement_partners,
    diversity_loss,
    head_disagreement,
    inconsistency_partners,
    load_text_csv,
    load_text_jsonl,
    make_preference_text,
    preference_loss,
    preferences_from_soft_labels,
    query_preferences,
    random_partners,
    reference_params,
    simulate_preferences,
    soft_label_margin_loss,
)

SMALL = dict(embedding_dim=16, pref_hidden=16, batch_size=32, max_iter=3, device="cpu")


def small(**kw):
    return P2CClassifier(**{**SMALL, "random_state": 0, **kw})


@pytest.fixture(scope="module")
def data():
    return make_preference_text(240, 3, random_state=0)


@pytest.fixture(scope="module")
def test_data():
    return make_preference_text(150, 3, random_state=1)


# ------------------------------------------------------------------ losses
def test_preference_loss_is_logistic_loss_on_score_differences():
    g = torch.Generator().manual_seed(0)
    r1, r2 = torch.randn(3, 20, generator=g), torch.randn(3, 20, generator=g)
    pref = torch.tensor([1.0, 0.0, 0.5, 0.3] * 5)
    d = r1 - r2
    expected = -(pref * torch.log(torch.sigmoid(d)) + (1 - pref) * torch.log(1 - torch.sigmoid(d)))
    torch.testing.assert_close(preference_loss(r1, r2, pref), expected.mean())
    # one head: 1-D scores; pref=1 is softplus(-d), pref=0 is softplus(d)
    torch.testing.assert_close(preference_loss(r1[0], r2[0], torch.ones(20)),
                               torch.nn.functional.softplus(-d[0]).mean())
    # a tie is minimal (zero gradient) at equal scores
    a = torch.zeros(5, requires_grad=True)
    preference_loss(a, torch.zeros(5), torch.full((5,), 0.5)).backward()
    torch.testing.assert_close(a.grad, torch.zeros(5))


def test_consistency_hinge_zero_when_orderings_agree():
    p1 = torch.tensor([0.9, 0.2, 0.5, 0.7])
    p2 = torch.tensor([0.4, 0.6, 0.5, 0.7])
    agree = torch.tensor([1.0, 0.0, 0.5, 0.5])  # 1 prefers the first, 0 the second, ties equal
    assert float(consistency_loss(p1, p2, agree)) == 0.0
    disagree = torch.tensor([0.0, 1.0, 0.5, 1.0])
    # |0.9-0.4| + |0.2-0.6| + 0 + 0 (equal confidence satisfies 'first preferred' with d=0)
    torch.testing.assert_close(consistency_loss(p1, p2, disagree), torch.tensor(0.9 / 4))
    tie = torch.tensor([0.5, 0.5, 0.5, 0.5])
    torch.testing.assert_close(consistency_loss(p1, p2, tie), torch.tensor((0.5 + 0.4) / 4))


def test_diversity_loss_matches_definition():
    r1, r2 = torch.tensor([[0.3, -0.2], [0.9, 0.1]]), torch.tensor([[0.1, 0.4], [-0.5, 0.0]])
    P = torch.sigmoid(r1 - r2)

    def ce(t, p):
        return -(t * torch.log(p) + (1 - t) * torch.log(1 - p)).mean()

    expected = (ce(P[0], P[1]) + ce(P[1], P[0])) / 2
    torch.testing.assert_close(diversity_loss(r1, r2), expected)
    assert float(diversity_loss(r1[:1], r2[:1])) == 0.0  # one head: no diversity term


def test_soft_label_margin_loss():
    s1, s2 = np.array([0.8, 0.2]), np.array([0.4, 0.6])
    assert soft_label_margin_loss(np.array([0.9, 0.1]), np.array([0.3, 0.7]), s1, s2) == 0.0
    got = soft_label_margin_loss(np.array([0.5, 0.5]), np.array([0.5, 0.5]), s1, s2)
    assert got == pytest.approx(0.8)  # gaps of 0.4 in each class, both unmet
    t = soft_label_margin_loss(torch.tensor([0.5, 0.5]), torch.tensor([0.5, 0.5]),
                               torch.tensor(s1), torch.tensor(s2))
    assert float(t) == pytest.approx(0.8)


# ------------------------------------------------------------------ sampling
def test_disagreement_sampling_picks_partner_with_largest_head_disagreement():
    # heads 0 and 1 order (0, j) the same way for j=1, head 2 flips for j=2 and j=3 is
    # ordered differently by all pairs of heads except one
    scores = np.array([
        [0.0, -1.0, -1.0, 1.0],
        [0.0, -1.0, -1.0, -1.0],
        [0.0, -1.0, 1.0, 1.0],
    ])
    cand = np.array([[1, 2, 3, -1]])
    count = head_disagreement(scores, np.array([0]), cand)
    np.testing.assert_array_equal(count, [[0, 2, 2, -1]])
    rng = np.random.RandomState(0)
    picks = {int(disagreement_partners(scores, np.array([0]), cand, rng)[0]) for _ in range(50)}
    assert picks == {2, 3}  # random tie-break between the two maxima, never 1 or padding
    # against brute force on random scores
    rng = np.random.RandomState(1)
    S = rng.normal(size=(4, 30))
    anchors = np.arange(10)
    cand = rng.randint(0, 30, size=(10, 6))
    cand[3, 2:] = -1
    partner = disagreement_partners(S, anchors, cand, rng)
    for a, row, p in zip(anchors, cand, partner):
        def dis(j):
            s = np.sign(S[:, a] - S[:, j])
            return sum(s[m] != s[k] for m in range(4) for k in range(m + 1, 4))
        assert dis(p) == max(dis(j) for j in row if j >= 0)


def test_random_and_inconsistency_sampling():
    rng = np.random.RandomState(0)
    cand = np.array([[4, 5, 6], [7, -1, -1], [-1, -1, -1]])
    for _ in range(20):
        p = random_partners(cand, rng)
        assert p[0] in (4, 5, 6) and p[1] == 7 and p[2] == -1
    incons = np.array([[0.0, 1.0, 3.0], [2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    picks = np.array([inconsistency_partners(incons, cand, rng) for _ in range(3000)])
    # min-max scaled weights (0, 1/3, 1): the least inconsistent candidate is never drawn
    assert not (picks[:, 0] == 4).any()
    assert np.mean(picks[:, 0] == 6) == pytest.approx(0.75, abs=0.04)
    assert (picks[:, 1] == 7).all() and (picks[:, 2] == -1).all()
    flat = np.array([inconsistency_partners(np.ones((1, 3)), cand[:1], rng)[0] for _ in range(600)])
    assert set(flat) == {4, 5, 6}  # all equal: uniform


# ------------------------------------------------------------ preference sources
def test_preferences_from_soft_labels_and_pairs():
    soft = np.array([[0.8, 0.2], [0.6, 0.4], [0.6, 0.4], [0.0, 1.0]])
    y = np.array([0, 0, 0, 1])
    pref = preferences_from_soft_labels(soft, y, [[0, 1], [1, 0], [1, 2]])
    np.testing.assert_array_equal(pref, [1.0, 0.0, 0.5])
    assert preferences_from_soft_labels(soft, y, [[0, 1]], tie_tol=0.3)[0] == 0.5
    i, j, p = check_preference_pairs([[0, 1, 1], [2, 1, 0.5]], y)
    np.testing.assert_array_equal(i, [0, 2])
    for bad, match in [([[0, 3, 1]], "different labels"), ([[0, 9, 1]], "outside"),
                       ([[0, 0, 1]], "themselves"), ([[0, 1, 2.0]], r"\[0, 1\]"),
                       ([[0, 1]], "shape"), ([[0, np.nan, 1]], "NaN")]:
        with pytest.raises(ValueError, match=match):
            check_preference_pairs(bad, y)


def test_scorer_hook_and_simulated_preferences(data):
    oracle = simulate_preferences(data.intensity, data.y, n_pairs_per_sample=2, random_state=0)
    i, j = oracle[:, 0].astype(int), oracle[:, 1].astype(int)
    assert (data.y[i] == data.y[j]).all()
    a, b = data.intensity[i, data.y[i]], data.intensity[j, data.y[i]]
    np.testing.assert_array_equal(oracle[:, 2], np.where(a > b, 1.0, np.where(a < b, 0.0, 0.5)))
    crowd = simulate_preferences(data.intensity, data.y, noise=0.3, n_workers=3, random_state=0)
    assert set(np.unique(crowd[:, 2])) <= {0, 1 / 6, 1 / 3, 0.5, 2 / 3, 5 / 6, 1}
    assert np.mean(np.round(crowd[:, 2]) == oracle[:, 2]) < 1.0  # noisy workers disagree
    scorer = CueWordScorer(data.cue_words)
    answers = query_preferences(scorer, data.texts, data.y, oracle[:50, :2])
    assert scorer.n_queries_ == 50 and answers.shape == (50, 3)
    # the cue-word scorer agrees with the oracle more often than not
    assert np.mean(answers[:, 2] == oracle[:50, 2]) > 0.6
    with pytest.raises(ValueError, match="scorer must return"):
        query_preferences(lambda a, b, lab: "A", data.texts, data.y, oracle[:2, :2])
    skipped = query_preferences(lambda a, b, lab: None, data.texts, data.y, oracle[:5, :2])
    assert skipped.shape == (0, 3)


# ------------------------------------------------------------------ data
def test_generator_and_loaders(tmp_path):
    d = make_preference_text(100, 4, n_annotators=7, random_state=3)
    assert d.texts.shape == (100,) and d.soft_labels.shape == (100, 4)
    np.testing.assert_allclose(d.soft_labels.sum(1), 1.0)
    assert (d.soft_labels[np.arange(100), d.y] == d.soft_labels.max(1)).all()  # majority
    assert 0.5 < np.mean(d.y == d.y_true) < 1.0  # annotators disagree: some labels are noisy
    np.testing.assert_array_equal(make_preference_text(100, 4, n_annotators=7,
                                                       random_state=3).texts, d.texts)
    with pytest.raises(ValueError, match="n_classes"):
        make_preference_text(10, 1)

    csv_path = tmp_path / "t.csv"
    csv_path.write_text("text,label,a1,a2,a3\nso good,pos,pos,pos,neg\nbad one,neg,neg,,neg\n"
                        "\"meh, ok\",pos,neg,pos,pos\n")
    b = load_text_csv(csv_path, annotation_columns=["a1", "a2", "a3"])
    assert b.texts.tolist() == ["so good", "bad one", "meh, ok"]
    assert b.classes.tolist() == ["neg", "pos"]
    np.testing.assert_allclose(b.soft_labels, [[1 / 3, 2 / 3], [1, 0], [1 / 3, 2 / 3]])
    nolabel = load_text_csv(csv_path, target_column=None, annotation_columns=["a1", "a2", "a3"])
    assert nolabel.y.tolist() == ["pos", "neg", "pos"]
    with pytest.warns(FutureWarning, match="target_column"):
        assert load_text_csv(csv_path, label_column=None, annotation_columns=["a1", "a2", "a3"]).y.tolist() \
            == ["pos", "neg", "pos"]
    with pytest.raises(ValueError, match="no column"):
        load_text_csv(csv_path, text_column="body")

    jl = tmp_path / "t.jsonl"
    jl.write_text("\n".join(json.dumps(r) for r in [
        {"text": "so good", "label": 1, "votes": [1, 1, 0]},
        {"text": "bad", "label": 0, "votes": [0, 0]}]) + "\n")
    j = load_text_jsonl(jl, annotations_key="votes")
    assert j.y.tolist() == [1, 0] and j.soft_labels.shape == (2, 2)
    plain = load_text_jsonl(jl)
    assert plain.soft_labels is None
    (tmp_path / "bad.jsonl").write_text("{oops\n")
    with pytest.raises(ValueError, match="not JSON"):
        load_text_jsonl(tmp_path / "bad.jsonl")


def test_tokenizer():
    tok = Tokenizer().fit(["b a a", "c, A!"])
    assert tok.vocabulary_ == ["a", "!", ",", "b", "c"]  # by count, then alphabetical
    ids = tok.encode(["a zzz", ""], max_length=3)
    assert ids.shape == (2, 3) and ids[0, 0] == 2 and ids[0, 1] == 1 and ids[1, 0] == 1
    assert pickle.loads(pickle.dumps(tok)).encode(["a zzz"], 3).tolist() == ids[:1].tolist()


# ---------------------------------------------------------------- estimator
def test_zero_auxiliary_weights_give_the_plain_classifier(data, test_data):
    zero = dict(lambda_pref=0.0, lambda_div=0.0, lambda_cons=0.0)
    plain = small().fit(data.texts, data.y).predict_proba(test_data.texts)
    prefs = simulate_preferences(data.intensity, data.y, random_state=0)
    for fkw in (dict(soft_labels=data.soft_labels), dict(preferences=prefs)):
        got = small(**zero).fit(data.texts, data.y, **fkw)
        np.testing.assert_array_equal(got.predict_proba(test_data.texts), plain)
        assert "loss_pref" not in got.history_[-1]
    # the P2C terms do change the model
    p2c = small().fit(data.texts, data.y, soft_labels=data.soft_labels)
    assert not np.allclose(p2c.predict_proba(test_data.texts), plain)
    assert {"loss_cls", "loss_pref", "loss_div", "loss_cons", "pair_fraction"} <= set(
        p2c.history_[-1])


def test_zero_weight_step_gradient_is_cross_entropy_gradient(data):
    est = small(lambda_pref=0.0, lambda_div=0.0, lambda_cons=0.0, dropout=0.0, max_iter=1)
    est.fit(data.texts, data.y)
    X, _ = est._validate(data.texts[:16], reset=False)
    y = torch.from_numpy(np.searchsorted(est.classes_, data.y[:16]))
    x = torch.from_numpy(X["x"])
    est.module_.zero_grad()
    torch.nn.functional.cross_entropy(est.module_(x), y).backward()
    expected = [p.grad.clone() for p in est.module_.classifier.parameters()]
    est.module_.zero_grad()
    # the losses the trainer backpropagates: one, the cross-entropy
    losses = list(est._train_losses({"x": x}, y, None))
    assert len(losses) == 1 and "loss_pref" not in losses[0][1]
    losses[0][0].backward()
    for p, g in zip(est.module_.classifier.parameters(), expected):
        torch.testing.assert_close(p.grad, g)


def _one_batch(est, data, n=24, seed=0):
    """A training minibatch of ``est`` (fitted) with partners drawn as in an epoch."""
    rng = np.random.RandomState(seed)
    ds = est._get_dataset(data.texts, data.y, reset=False, soft_labels=data.soft_labels)
    rows = np.arange(len(ds))
    cand, pref = ds.source.candidates(np.ones(len(ds), bool), 8, rng)
    partner = random_partners(cand, rng)
    col = np.argmax(cand == partner[:, None], axis=1)
    ds.set_partners(rows, partner, pref[rows, col])
    x, y = ds.__getitems__(list(range(n)))
    x = {k: torch.as_tensor(v) for k, v in x.items()}
    return x, torch.as_tensor(y), ds


def test_margin_consistency_term_is_the_soft_label_margin(data):
    est = small(consistency="margin", lambda_pref=0.0, lambda_div=0.0, dropout=0.0,
                max_iter=1).fit(data.texts, data.y, soft_labels=data.soft_labels)
    assert "loss_cons" in est.history_[-1]
    x, y, ds = _one_batch(est, data)
    assert bool(x["has_pair"].all())
    (loss, stats), = est._train_losses(x, y, None)
    net = est.module_
    p1 = torch.softmax(net(x["x"].long()), 1)
    p2 = torch.softmax(net(x["x2"].long()), 1)
    partner = ds.partner[:24]
    # the margin over all classes, on the annotators' soft labels of anchor and partner
    s1 = torch.from_numpy(data.soft_labels[:24]).float()
    s2 = torch.from_numpy(data.soft_labels[partner]).float()
    ds_, dp = s1 - s2, p1 - p2
    expected = torch.where(ds_ >= 0, torch.relu(ds_ - dp), torch.relu(dp - ds_)).sum(1).mean()
    torch.testing.assert_close(stats["loss_cons"], expected.detach())
    ce = torch.nn.functional.cross_entropy(net(x["x"].long()), y)
    torch.testing.assert_close(loss, ce + expected)
    # it differs from the label hinge, which reads the pair's label only
    hinge = small(lambda_pref=0.0, lambda_div=0.0, dropout=0.0, max_iter=1)
    hinge.fit(data.texts, data.y, soft_labels=data.soft_labels)
    hinge.module_.load_state_dict(net.state_dict())
    (_, hstats), = hinge._train_losses(x, y, None)
    assert not torch.allclose(hstats["loss_cons"], stats["loss_cons"])


def test_classify_partners_halves_the_weight_of_each_pair_member(data):
    est = small(classify_partners=True, lambda_pref=0.0, lambda_div=0.0, lambda_cons=0.0,
                dropout=0.0, max_iter=1).fit(data.texts, data.y, soft_labels=data.soft_labels)
    # partners are drawn even with every auxiliary weight at zero
    assert est.history_[-1]["pair_fraction"] > 0.5
    x, y, _ = _one_batch(est, data)
    x["has_pair"][:4] = False  # anchors without a partner keep weight 1
    (loss, _), = est._train_losses(x, y, None)
    net = est.module_
    ce1 = torch.nn.functional.cross_entropy(net(x["x"].long()), y, reduction="none")
    ce2 = torch.nn.functional.cross_entropy(net(x["x2"].long()), y, reduction="none")
    has = x["has_pair"]
    expected = (ce1[~has].sum() + 0.5 * (ce1[has] + ce2[has]).sum()) / len(y)
    torch.testing.assert_close(loss, expected)
    # without the option the partners are not classified
    plain = small(lambda_pref=0.0, lambda_div=0.0, lambda_cons=0.0, dropout=0.0, max_iter=1)
    plain.fit(data.texts, data.y, soft_labels=data.soft_labels)
    plain.module_.load_state_dict(net.state_dict())
    (loss0, _), = plain._train_losses(x, y, None)
    torch.testing.assert_close(loss0, ce1.mean())


def test_reference_params_reach_the_shipped_recipe(data, test_data):
    params = reference_params()
    assert params == reference_params("extractive") and params is not reference_params()
    est = P2CClassifier(**params)
    assert (est.consistency, est.classify_partners, est.sampling) == ("margin", True,
                                                                      "disagreement")
    assert (est.lambda_div, est.lambda_cons, est.batch_size, est.learning_rate) == (
        0.1, 1.0, 16, "constant")
    est.set_params(embedding_dim=16, pref_hidden=16, max_iter=2, random_state=0, device="cpu")
    est.fit(data.texts, data.y, soft_labels=data.soft_labels)
    assert {"loss_cons", "loss_pref", "loss_div"} <= set(est.history_[-1])
    assert est.predict(test_data.texts[:5]).shape == (5,)
    for source in ("generative", "subjective"):
        p = reference_params(source)
        assert p["consistency"] == "label" and p["sampling"] == "random"
        assert p["classify_partners"]
    with pytest.raises(ValueError, match="source must be one of"):
        reference_params("crowd")
    # the margin term needs the annotators' soft labels
    prefs = simulate_preferences(data.intensity, data.y, random_state=0)
    with pytest.raises(ValueError, match="consistency='margin'.*soft_labels"):
        small(consistency="margin").fit(data.texts, data.y, preferences=prefs)


@pytest.mark.parametrize("sampling", ["random", "disagreement", "inconsistency"])
def test_every_source_and_sampling_trains(data, test_data, sampling):
    prefs = simulate_preferences(data.intensity, data.y, random_state=0)
    scorer = CueWordScorer(data.cue_words, noise=0.05, random_state=0)
    for fkw, kind in [(dict(soft_labels=data.soft_labels), "soft_labels"),
                      (dict(preferences=prefs), "pairs"), (dict(preferences=scorer), "scorer")]:
        est = small(sampling=sampling, max_iter=2).fit(data.texts, data.y, **fkw)
        assert est.preference_source_ == kind
        assert est.history_[-1]["pair_fraction"] > 0.5
        assert est.predict(test_data.texts[:5]).shape == (5,)
    assert scorer.n_queries_ == 2 * len(data.texts)
    assert small(max_iter=1).fit(data.texts, data.y).preference_source_ is None


def test_learns_and_preference_heads_rank_intensity():
    d = make_preference_text(600, 2, random_state=5)
    t = make_preference_text(300, 2, random_state=6)
    prefs = simulate_preferences(d.intensity, d.y, n_pairs_per_sample=4, random_state=0)
    est = P2CClassifier(embedding_dim=16, pref_hidden=16, max_iter=12, random_state=0,
                        device="cpu").fit(d.texts, d.y, preferences=prefs)
    assert est.score(t.texts, t.y_true) > 0.7
    s = est.preference_scores(t.texts, t.y_true)
    r = np.corrcoef(s, t.intensity[np.arange(len(t.y)), t.y_true])[0, 1]
    assert r > 0.3
    proba = est.predict_proba(t.texts)
    np.testing.assert_allclose(proba.sum(1), 1.0)


def test_transformer_encoder_save_load_pickle_and_clone(data, test_data, tmp_path):
    labels = np.array(["anger", "joy", "fear"])[data.y]
    est = small(encoder="transformer", n_heads=2, sampling="disagreement").fit(
        data.texts, labels, soft_labels=data.soft_labels)
    expected = est.predict_proba(test_data.texts)
    est.save(tmp_path / "m.pt")
    loaded = P2CClassifier.load(tmp_path / "m.pt")
    assert loaded.get_params() == est.get_params()
    assert loaded.vocabulary_ == est.vocabulary_ and loaded.preference_source_ == "soft_labels"
    np.testing.assert_array_equal(loaded.classes_, ["anger", "fear", "joy"])
    np.testing.assert_array_equal(loaded.predict_proba(test_data.texts), expected)
    loaded.partial_fit(data.texts, labels)
    assert loaded.n_iter_ == est.n_iter_ + 1
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(est)).predict_proba(test_data.texts),
                                  expected)
    c = clone(est)
    assert c.get_params() == est.get_params() and not hasattr(c, "module_")


def test_reproducible_and_global_rng_untouched(data, test_data):
    kw = dict(sampling="inconsistency")
    a = small(**kw).fit(data.texts, data.y, soft_labels=data.soft_labels)
    torch.manual_seed(7)
    ref = torch.rand(2)
    torch.manual_seed(7)
    b = small(**kw).fit(data.texts, data.y, soft_labels=data.soft_labels)
    torch.testing.assert_close(torch.rand(2), ref)
    np.testing.assert_array_equal(a.predict_proba(test_data.texts), b.predict_proba(test_data.texts))
    c = small(random_state=1, **kw).fit(data.texts, data.y, soft_labels=data.soft_labels)
    assert not np.array_equal(a.predict_proba(test_data.texts), c.predict_proba(test_data.texts))


def test_baselines_soft_labels_and_smoothing(data):
    soft = small(label_target="soft", lambda_pref=0.0, lambda_div=0.0, lambda_cons=0.0)
    soft.fit(data.texts, data.y, soft_labels=data.soft_labels)
    smooth = small(label_smoothing=0.2).fit(data.texts, data.y)
    assert soft.history_[-1]["loss_cls"] > 0 and smooth.history_[-1]["loss_cls"] > 0
    with pytest.raises(ValueError, match="label_target='soft' needs soft_labels"):
        small(label_target="soft").fit(data.texts, data.y)


class NumericP2C(P2CClassifier):
    """P2C behind a numeric front end, so that scikit-learn's checks can feed it 2-D arrays.

    Each feature becomes a word ``f{j}_{bin}``; everything after the input check (tokenizer,
    training, pairs, predict) is the real P2CClassifier.
    """

    def _check_input(self, X, *, reset):
        X = validate_data(self, X, reset=reset, dtype=np.float64)
        return [" ".join(f"f{j}_{int(np.clip(np.floor(v), -3, 3))}" for j, v in enumerate(row))
                for row in X]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True
        tags.input_tags.string = False
        return tags


@parametrize_with_checks(
    # every check passes through the numeric front end: no expected_failed_checks
    [NumericP2C(embedding_dim=16, pref_hidden=16, max_iter=20, learning_rate_init=1e-2,
                random_state=0, device="cpu")]
)
def test_sklearn_checks_through_numeric_front_end(estimator, check):
    check(estimator)


def test_sklearn_api_checks_that_apply():
    # check_estimator feeds numeric 2-D arrays, which a raw-text model rejects (its tags say
    # so: two_d_array=False, string=True); the API checks that need no X apply and pass.
    est = P2CClassifier()
    name = type(est).__name__
    check_parameters_default_constructible(name, est)
    check_no_attributes_set_in_init(name, est)
    check_get_params_invariance(name, est)
    check_set_params(name, est)


def test_grid_search_early_stopping_and_warm_start(data, test_data):
    grid = GridSearchCV(small(max_iter=2), {"lambda_cons": [0.0, 1.0]}, cv=2)
    grid.fit(data.texts, data.y)  # no preferences: plain classifier, still cross-validates
    assert 0 <= grid.best_score_ <= 1
    # soft labels are split with the texts
    grid.fit(data.texts, data.y, soft_labels=data.soft_labels)
    assert grid.best_estimator_.preference_source_ == "soft_labels"
    es = small(early_stopping=True, max_iter=30, n_iter_no_change=2, validation_fraction=0.2)
    es.fit(data.texts, data.y, soft_labels=data.soft_labels)
    assert es.n_iter_ < 30 and es.best_validation_score_ == max(es.validation_scores_)
    # validation data is only classified: it needs no soft labels, whatever the loss
    for params in (dict(consistency="margin"), dict(label_target="soft"), reference_params()):
        est = small(**{**params, "max_iter": 2, "batch_size": 32})
        est.fit(data.texts, data.y, soft_labels=data.soft_labels,
                validation_data=(test_data.texts, test_data.y))
        assert len(est.validation_scores_) == 2
    warm = small(warm_start=True, max_iter=1).fit(data.texts, data.y)
    first = warm.module_
    warm.fit(data.texts, data.y, soft_labels=data.soft_labels)
    assert warm.module_ is first and warm.n_iter_ == 2


class HashEncoder:
    """Stand-in for a locally installed sentence encoder: hashed bag of words."""

    def encode(self, texts):
        out = np.zeros((len(texts), 24), dtype=np.float32)
        for r, t in enumerate(texts):
            for w in t.split():
                out[r, sum(map(ord, w)) % 24] += 1.0
        return out


def test_pretrained_encoder_adapter(data, test_data, tmp_path, monkeypatch):
    est = small(encoder="pretrained", pretrained_model=HashEncoder(), max_iter=2)
    est.fit(data.texts, data.y, soft_labels=data.soft_labels)
    assert est.feature_dim_ == 24 and est.vocabulary_ == []
    assert est.predict(test_data.texts).shape == (len(test_data.texts),)
    with pytest.raises(TypeError, match="pickle"):
        est.save(tmp_path / "m.pt")
    # a model name needs sentence-transformers; nothing is downloaded
    import builtins

    real_import = builtins.__import__

    def no_st(name, *args, **kwargs):
        if name.startswith("sentence_transformers"):
            raise ImportError("No module named 'sentence_transformers'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_st)
    with pytest.raises(ImportError, match="nothing is downloaded"):
        small(encoder="pretrained", pretrained_model="all-MiniLM-L6-v2").fit(data.texts, data.y)
    with pytest.raises(ValueError, match="encode"):
        SentenceEncoder(object()).encode(["a"])


@pytest.mark.parametrize(
    "params, match",
    [
        ({"encoder": "lstm"}, "'encoder' parameter"),
        ({"sampling": "hard"}, "'sampling' parameter"),
        ({"consistency": "hinge"}, "'consistency' parameter"),
        ({"classify_partners": "yes"}, "'classify_partners' parameter"),
        ({"encoder": "pretrained"}, "pretrained_model"),
        ({"encoder": "transformer", "embedding_dim": 15, "n_heads": 2}, "divide"),
        ({"lambda_pref": -1.0}, "lambda_pref"),
        ({"n_pref_heads": -1}, "n_pref_heads"),
        ({"label_smoothing": 1.5}, "label_smoothing"),
        ({"device": "tpu"}, "device"),
    ],
)
def test_bad_parameters(data, params, match):
    with pytest.raises(ValueError, match=match):
        small(**params).fit(data.texts, data.y)


def test_bad_inputs(data):
    X, y = data.texts, data.y
    with pytest.raises(ValueError, match="raw texts"):
        small().fit(np.random.rand(20, 5), np.arange(20) % 2)
    with pytest.raises(ValueError, match="raw texts"):
        small().fit(np.arange(20), np.arange(20) % 2)
    with pytest.raises(ValueError, match="single string"):
        small().fit("one text", [0])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        small().fit(X, y[:-1])
    with pytest.raises(ValueError, match="2 classes"):
        small().fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="soft_labels must have shape"):
        small().fit(X, y, soft_labels=data.soft_labels[:, :2])
    with pytest.raises(ValueError, match="different labels"):
        i, j = np.flatnonzero(y == 0)[0], np.flatnonzero(y == 1)[0]
        small().fit(X, y, preferences=[[i, j, 1.0]])
    with pytest.raises(NotFittedError):
        small().predict(X)
    est = small(max_iter=1).fit(X, y)
    with pytest.raises(ValueError, match="raw texts"):
        est.predict(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="classes seen in fit"):
        est.preference_scores(X[:2], ["x", "y"])
    assert est.predict(["", "zzz unknown words"]).shape == (2,)  # empty / unknown texts are fine
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        X_list = list(X)
        est.predict(X_list)
        assert X_list == list(X)  # inputs untouched


def test_public_docstrings():
    validate = pytest.importorskip("numpydoc.validate").validate
    import inspect

    import neural.text

    names = []
    for name in neural.text.__all__:
        obj = getattr(neural.text, name)
        names.append(f"{obj.__module__}.{obj.__qualname__}")
        if inspect.isclass(obj):
            names += [f"{obj.__module__}.{obj.__qualname__}.{m}" for m, f in vars(obj).items()
                      if not m.startswith("_") and callable(f)]
    ignored = {"ES01", "SA01", "EX01", "GL08", "RT02"}
    errors = {n: [c for c, _ in validate(n)["errors"] if c not in ignored] for n in names}
    assert not {n: e for n, e in errors.items() if e}
