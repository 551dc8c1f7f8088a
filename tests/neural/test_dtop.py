"""DToP: pruning semantics, FLOP accounting, the estimator, data helpers."""

import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from neural.segmentation import (
    DToPSegmenter,
    DToPViT,
    count_flops,
    load_segmentation_folder,
    make_segmentation,
    mean_iou,
    select_exits,
)

TINY = dict(embed_dim=32, depth=4, num_heads=2, stage_ends=(1, 2), batch_size=16,
            learning_rate_init=3e-3, device="cpu")


@pytest.fixture(scope="module")
def data():
    X, M = make_segmentation(80, image_size=32, random_state=0)
    Xt, Mt = make_segmentation(24, image_size=32, random_state=1)
    return X, M, Xt, Mt


@pytest.fixture(scope="module")
def trained(data):
    X, M, _, _ = data
    return DToPSegmenter(p0=1.0, max_iter=8, finetune_iter=0, random_state=0, **TINY).fit(X, M)


def module(seed=0, **kw):
    torch.manual_seed(seed)
    args = {**dict(patch_size=4, embed_dim=32, depth=4, num_heads=2, stage_ends=(1, 2)), **kw}
    return DToPViT(3, (32, 32), 4, **args).eval()


# ------------------------------------------------------------------- pruning semantics
def test_p0_one_gives_exactly_the_unpruned_output(data, trained):
    x = torch.from_numpy(data[2][:6])
    m = trained.module_
    with torch.no_grad():
        dense = m.forward_dense(x)
        for run_aux in (None, True):
            out = m(x, p0=1.0, k=5, run_aux=run_aux)
            assert torch.equal(out.logits, dense)
            assert (out.n_active == m.n_tokens).all()
            assert (out.exit_stage == m.n_stages - 1).all()
    est = clone(trained).set_params(p0=1.0)
    est.__dict__.update({k: v for k, v in trained.__dict__.items() if k.endswith("_")})
    proba, report = est.predict_proba(data[2][:6], return_report=True)
    ref = torch.softmax(m.upsample(dense).double(), dim=1).numpy()
    np.testing.assert_array_equal(proba, ref)
    assert report.flops_ratio == 1.0 and report.pruned_fraction == 0.0


def test_pruned_fraction_grows_as_p0_falls(data, trained):
    Xt = data[2]
    est = clone(trained)
    est.__dict__.update({k: v for k, v in trained.__dict__.items() if k.endswith("_")})
    fractions, first_exits = [], []
    x = torch.from_numpy(Xt)
    for p0 in (1.0, 0.99, 0.95, 0.9, 0.8, 0.6, 0.4):
        _, report = est.set_params(p0=p0).predict(Xt, return_report=True)
        fractions.append(report.pruned_fraction)
        with torch.no_grad():
            first_exits.append(trained.module_(x, p0=p0, k=est.k).exit_stage == 0)
    assert fractions[0] == 0.0 and fractions[-1] > 0.3
    assert all(b >= a for a, b in zip(fractions, fractions[1:])), fractions
    # at the first stage the exits of a lower threshold contain those of a higher one
    for hi, lo in zip(first_exits, first_exits[1:]):
        assert not (hi & ~lo).any()


@pytest.mark.parametrize("p0,k", [(0.6, 1), (0.4, 3), (0.3, 0)])
def test_exited_token_keeps_its_stage_label(data, trained, p0, k):
    m = trained.module_
    with torch.no_grad():
        out = m(torch.from_numpy(data[2]), p0=p0, k=k)
    final = out.logits.argmax(-1)
    assert (out.exit_stage < m.n_stages - 1).any()
    for s, canvas in enumerate(out.stage_logits):
        exited = out.exit_stage == s
        # the stage-s head's label and logits, unchanged through later stages
        assert torch.equal(final[exited], canvas.argmax(-1)[exited])
        for later in out.stage_logits[s:]:
            assert torch.equal(later[exited], canvas[exited])
    # the estimator's report agrees with the module's exits
    est = clone(trained).set_params(p0=p0, k=k)
    est.__dict__.update({k_: v for k_, v in trained.__dict__.items() if k_.endswith("_")})
    _, report = est.predict(data[2], return_report=True)
    np.testing.assert_array_equal(report.exit_stage.reshape(len(data[2]), -1), out.exit_stage)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(0, 6), p0=st.sampled_from([0.3, 0.5, 0.7]))
def test_select_exits_keeps_top_k_easy_tokens_per_class(seed, k, p0):
    g = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(3, 40, 4, generator=g)
    active = torch.rand(3, 40, generator=g) < 0.8
    exits = select_exits(logits, active, p0, k)
    conf, cls = logits.softmax(-1).max(-1)
    easy = active & (conf > p0)
    assert not (exits & ~easy).any()  # only confident active tokens exit
    kept = easy & ~exits
    for b in range(3):
        for c in range(4):
            of_c = cls[b] == c
            n_c = int((easy[b] & of_c).sum())
            assert int((kept[b] & of_c).sum()) == min(k, n_c)
            if (kept[b] & of_c).any() and (exits[b] & of_c).any():  # the most confident stay
                assert conf[b][kept[b] & of_c].min() >= conf[b][exits[b] & of_c].max()


def test_forward_keeps_min_k_n_c_easy_tokens_per_class(data, trained):
    m, k, p0 = trained.module_, 2, 0.5
    with torch.no_grad():
        out = m(torch.from_numpy(data[2]), p0=p0, k=k)
    for s, canvas in enumerate(out.stage_logits[:-1]):
        active_s = out.exit_stage >= s  # processed by stage s
        conf, cls = canvas.softmax(-1).max(-1)
        easy = active_s & (conf > p0)
        stays = out.exit_stage > s
        for c in range(m.n_classes):
            n_c = (easy & (cls == c)).sum(1)
            assert ((easy & stays & (cls == c)).sum(1) >= torch.clamp(n_c, max=k)).all()


# ------------------------------------------------------------------------ FLOP accounting
def test_analytic_flops_match_torch_flop_counter():
    m = module()
    x = torch.rand(3, 3, 32, 32)
    assert count_flops(m.forward_dense, x) == 3 * m.flops_unpruned()
    assert count_flops(m, x, p0=1.0) == 3 * m.flops_unpruned()  # no aux heads without pruning
    # one image at a time the pruned forward computes exactly what the report counts
    for p0 in (0.3, 0.26):
        with torch.no_grad():
            out = m(x[:1], p0=p0, k=1)
        assert out.n_active[0, -1] < m.n_tokens
        assert count_flops(m, x[:1], p0=p0, k=1) == m.flops(out.n_active.numpy())[0]


def test_flops_fall_when_tokens_are_pruned(data, trained):
    est = clone(trained).set_params(p0=0.6)
    est.__dict__.update({k: v for k, v in trained.__dict__.items() if k.endswith("_")})
    _, report = est.predict(data[2], return_report=True)
    pruned = report.tokens_active[:, -1] < report.n_tokens
    assert pruned.any()
    assert (report.flops[pruned] < report.flops_unpruned).all()
    assert report.flops_ratio < 1.0
    # fewer active tokens, fewer FLOPs (monotone in every stage)
    m = trained.module_
    full = np.array([[m.n_tokens] * m.n_stages])
    for s in range(1, m.n_stages):
        fewer = full.copy()
        fewer[0, s] -= 5
        assert m.flops(fewer)[0] < m.flops(full)[0]
    assert "unpruned" in report.summary()


# ---------------------------------------------------------------------------- estimator
CHECK_EST = DToPSegmenter(patch_size=1, embed_dim=8, depth=2, num_heads=1, stage_ends=(1,),
                          max_iter=20, finetune_iter=0, learning_rate_init=1e-2, device="cpu")


# Flat X with 1-D y is read as 1x1 images with one-pixel masks (a ViT on one token), so every
# generic check applies to that degenerate case; image -> mask behaviour is tested below.
@parametrize_with_checks(
    [CHECK_EST],
    expected_failed_checks=lambda est: {
        "check_methods_subset_invariance": (
            "float32 matrix products over a different number of rows round differently "
            "(BLAS blocking); probabilities of a batch and of its parts differ by ~1e-7, "
            "above the check's atol=1e-7"
        ),
    },
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_score_is_mean_iou(data, trained):
    _, _, Xt, Mt = data
    pred = trained.predict(Xt)
    assert pred.shape == Mt.shape and set(np.unique(pred)) <= set(trained.classes_)
    assert trained.score(Xt, Mt) == pytest.approx(mean_iou(Mt, pred))
    assert trained.score(Xt, Mt) > 0.3  # learned something beyond the background
    proba = trained.predict_proba(Xt)
    assert proba.shape == (len(Xt), 4, 32, 32)
    np.testing.assert_allclose(proba.sum(1), 1.0)


def test_mean_iou():
    y = np.array([[0, 0, 1, 1]])
    assert mean_iou(y, y) == 1.0
    # class 0: tp 1, union 2 -> 0.5; class 1: tp 2, union 3 -> 2/3
    assert mean_iou(y, np.array([[0, 1, 1, 1]])) == pytest.approx((0.5 + 2 / 3) / 2)
    with pytest.raises(ValueError, match="shape"):
        mean_iou(y, y[:, :3])


def test_two_step_recipe(data):
    X, M, Xt, _ = data
    est = DToPSegmenter(p0=0.7, k=2, max_iter=2, finetune_iter=2, random_state=0, **TINY)
    est.fit(X[:32], M[:32])
    assert est.n_iter_ == 4 and len(est.history_) == 4
    assert [h["pruned"] for h in est.history_] == [0.0, 0.0, 1.0, 1.0]
    assert est.history_[-1]["active_fraction"] <= 1.0
    # the fine-tuning step restarts its schedule at 0.3 * learning_rate_init by default
    assert est.history_[2]["lr"] == pytest.approx(0.3 * TINY["learning_rate_init"])
    est.set_params(finetune_learning_rate=1e-4, max_iter=1, finetune_iter=1).fit(X[:16], M[:16])
    assert est.history_[1]["lr"] == pytest.approx(1e-4)
    assert est.predict(Xt[:2]).shape == (2, 32, 32)


def test_default_is_the_two_step_recipe_and_finetune_iter_zero_the_old_behaviour(data):
    X, M, Xt, _ = data
    default = DToPSegmenter()
    phases = default._training_phases()
    assert [p.name for p in phases] == ["train", "finetune"]
    assert [p.n_epochs for p in phases] == [default.max_iter, default.finetune_iter] == [50, 10]
    assert phases[0].options == {} and phases[1].options == {"p0": default.p0} == {"p0": 0.99}
    assert phases[1].learning_rate == pytest.approx(0.3 * default.learning_rate_init)
    # finetune_iter=0: one plain phase, pruning at prediction only
    old = DToPSegmenter(finetune_iter=0)._training_phases()
    assert [p.name for p in old] == ["train"] and old[0].options == {}
    est = DToPSegmenter(max_iter=2, finetune_iter=0, random_state=0, **TINY).fit(X[:16], M[:16])
    assert est.n_iter_ == 2 and [h["pruned"] for h in est.history_] == [0.0, 0.0]
    _, report = est.predict(Xt[:4], return_report=True)
    # prediction prunes at the default p0: the auxiliary heads run and decide the exits
    # (after 2 epochs no token is confident enough to exit, so the heads only add FLOPs)
    assert est.p0 == 0.99 and (report.flops > report.flops_unpruned).all()


def test_clone_pickle_save_load(data, trained, tmp_path):
    _, _, Xt, _ = data
    ref = trained.predict_proba(Xt[:4])
    assert clone(trained).get_params() == trained.get_params()
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(trained)).predict_proba(Xt[:4]), ref)
    trained.save(tmp_path / "dtop.pt")
    loaded = DToPSegmenter.load(tmp_path / "dtop.pt")
    np.testing.assert_array_equal(loaded.predict_proba(Xt[:4]), ref)
    assert loaded.masks_ndim_ == 3


def test_reproducible_with_random_state(data):
    X, M, Xt, _ = data
    a = DToPSegmenter(p0=0.8, max_iter=1, finetune_iter=1, random_state=3, **TINY).fit(X[:24], M[:24])
    b = DToPSegmenter(p0=0.8, max_iter=1, finetune_iter=1, random_state=3, **TINY).fit(X[:24], M[:24])
    np.testing.assert_array_equal(a.predict_proba(Xt[:4]), b.predict_proba(Xt[:4]))


def test_label_values_are_kept(data):
    X, M, _, _ = data
    est = DToPSegmenter(max_iter=1, finetune_iter=1, random_state=0, **TINY).fit(
        X[:16], M[:16] * 10 + 5)
    np.testing.assert_array_equal(est.classes_, [5, 15, 25, 35])
    assert set(np.unique(est.predict(X[:2]))) <= {5, 15, 25, 35}


@pytest.mark.parametrize("params,X_shape,y_shape,match", [
    ({}, (4, 3, 32, 32), (4, 32, 16), "masks y must have shape"),
    ({}, (4, 3, 30, 30), (4, 30, 30), "patch_size"),
    ({}, (4, 3, 32, 32), (4, 32 * 32), "label masks of shape"),
    ({"p0": 1.5}, (4, 3, 32, 32), (4, 32, 32), "p0"),
    ({"p0": 0.0}, (4, 3, 32, 32), (4, 32, 32), "p0"),
    ({"k": -1}, (4, 3, 32, 32), (4, 32, 32), "k"),
    ({"stage_ends": (2, 1)}, (4, 3, 32, 32), (4, 32, 32), "stage_ends"),
    ({"stage_ends": (4,)}, (4, 3, 32, 32), (4, 32, 32), "stage_ends"),
    ({"num_heads": 3}, (4, 3, 32, 32), (4, 32, 32), "num_heads"),
    ({"finetune_learning_rate": -1.0}, (4, 3, 32, 32), (4, 32, 32), "finetune_learning_rate"),
])
def test_bad_input_raises_value_error(params, X_shape, y_shape, match):
    rng = np.random.RandomState(0)
    X = rng.rand(*X_shape)
    y = rng.randint(0, 2, size=y_shape)
    est = DToPSegmenter(max_iter=1, **{**TINY, **params})
    with pytest.raises(ValueError, match=match):
        est.fit(X, y)


def test_predict_checks_image_size(trained):
    with pytest.raises(ValueError, match="fitted on samples of shape"):
        trained.predict(np.zeros((2, 3, 16, 16)))
    X = np.zeros((2, 3, 32, 32))
    X[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        trained.predict(X)


# --------------------------------------------------------------------------------- data
def test_make_segmentation():
    X, M = make_segmentation(12, image_size=16, n_classes=5, random_state=0)
    X2, M2 = make_segmentation(12, image_size=16, n_classes=5, random_state=0)
    assert X.shape == (12, 3, 16, 16) and X.dtype == np.float32 and M.shape == (12, 16, 16)
    assert X.min() >= 0 and X.max() <= 1 and set(np.unique(M)) <= set(range(5))
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(M, M2)
    assert (M == 0).mean() > 0.3 and len(np.unique(M)) > 2
    with pytest.raises(ValueError, match="n_classes"):
        make_segmentation(2, n_classes=1)


def test_load_segmentation_folder(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    X, M = make_segmentation(3, image_size=16, random_state=0)
    (tmp_path / "img").mkdir()
    (tmp_path / "mask").mkdir()
    for i in range(3):
        Image.fromarray((X[i].transpose(1, 2, 0) * 255).round().astype(np.uint8)).save(
            tmp_path / "img" / f"a{i}.png")
        Image.fromarray(M[i].astype(np.uint8), mode="L").save(tmp_path / "mask" / f"a{i}.png")
    Xl, Ml = load_segmentation_folder(tmp_path / "img", tmp_path / "mask")
    assert Xl.shape == (3, 3, 16, 16) and Ml.dtype == np.int64
    np.testing.assert_array_equal(Ml, M)
    np.testing.assert_allclose(Xl, X, atol=1 / 255)
    Xs, Ms = load_segmentation_folder(tmp_path / "img", tmp_path / "mask", image_size=8)
    assert Xs.shape == (3, 3, 8, 8) and Ms.shape == (3, 8, 8)
    (tmp_path / "mask" / "a2.png").unlink()
    with pytest.raises(ValueError, match="no mask"):
        load_segmentation_folder(tmp_path / "img", tmp_path / "mask")
    with pytest.raises(ValueError, match="not a folder"):
        load_segmentation_folder(tmp_path / "nope", tmp_path / "mask")


# --------------------------------------------------------------------------- docstrings
def _public_names():
    import inspect

    import neural.segmentation as seg

    names = []
    for name in seg.__all__:
        obj = getattr(seg, name)
        names.append(f"{obj.__module__}.{obj.__qualname__}")
        if inspect.isclass(obj):
            names += [f"{obj.__module__}.{obj.__qualname__}.{m}" for m, f in vars(obj).items()
                      if not m.startswith("_") and (callable(f) or isinstance(f, property))
                      and not (m.startswith("set_") and m.endswith("_request"))]
    return names


@pytest.mark.parametrize("name", _public_names())
def test_docstring(name):
    validate = pytest.importorskip("numpydoc.validate").validate
    # dataclasses document their fields under Attributes: users receive them, not build them
    ignored = {"ES01", "SA01", "EX01", "GL08", "RT02"}
    if name.rsplit(".", 1)[-1] in ("DToPOutput", "PruningReport"):
        ignored |= {"PR01"}
    errors = [(c, m) for c, m in validate(name)["errors"] if c not in ignored]
    assert not errors


def test_module_edge_cases():
    m = module()
    x = torch.rand(2, 3, 32, 32)
    with pytest.raises(ValueError, match="run_aux"):
        m(x, p0=0.5, run_aux=False)
    # no auxiliary head: a plain segmenter, p0 has nothing to prune
    plain = module(stage_ends=())
    with torch.no_grad():
        out = plain(x, p0=0.1)
        assert torch.equal(out.logits, plain.forward_dense(x))
    assert out.n_active.shape == (2, 1)
    # k=0 and a tiny threshold: whole images can exit at the first stage without NaN
    with torch.no_grad():
        out = m(x, p0=0.0, k=0)
    assert (out.exit_stage == 0).all() and torch.isfinite(out.logits).all()
    assert (out.n_active[:, 1:] == 0).all()
