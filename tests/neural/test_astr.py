"""ASTR: scanning-mode conversion, sparse context, the video segmenter and its data."""

import inspect
import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import estimator_checks as ec

import neural.video
from neural.video import (
    ASTRNet,
    ASTRSegmenter,
    ProductFusion,
    ScanModeConverter,
    astr_loss,
    detect_scan_mode,
    dice_score,
    fan_mask,
    linear_to_sector,
    load_ultrasound_folder,
    make_clips,
    make_ultrasound_videos,
    sector_to_linear,
    segmentation_scores,
    select_sparse_tokens,
)

TINY = dict(width=4, embed_dim=16, num_heads=2, batch_size=16, device="cpu")


def ellipse(size, cy=0.55, cx=0.5, ay=0.2, ax=0.25):
    yy, xx = np.mgrid[:size, :size] / size
    return ((((yy - cy) / ay) ** 2 + ((xx - cx) / ax) ** 2) <= 1).astype(np.uint8)


def iou(a, b):
    a, b = a.astype(bool), b.astype(bool)
    return (a & b).sum() / (a | b).sum()


@pytest.fixture(scope="module")
def videos():
    X, M, modes = make_ultrasound_videos(6, n_frames=3, image_size=32, random_state=0)
    return X, M, modes


@pytest.fixture(scope="module")
def fitted(videos):
    X, M, _ = videos
    return ASTRSegmenter(3, max_iter=2, random_state=0, **TINY).fit(X, M)


# ------------------------------------------------------------ scan conversion
@pytest.mark.parametrize("size", [32, 64])
def test_round_trip_linear_sector_linear_preserves_mask(size):
    m = ellipse(size)
    back = sector_to_linear(linear_to_sector(m))
    assert back.dtype == m.dtype and set(np.unique(back)) <= {0, 1}
    assert iou(m, back) > (0.88 if size == 32 else 0.95)


def test_round_trip_sector_linear_sector_inside_fan():
    fan = fan_mask((64, 64), angle=80, inner_radius=0.3)
    m = ellipse(64, cy=0.5) * fan
    geom = dict(angle=80, inner_radius=0.3)
    back = linear_to_sector(sector_to_linear(m, **geom), **geom)
    assert iou(m, back * fan) > 0.95
    img = np.random.RandomState(0).rand(64, 64).astype(np.float32) * fan
    smooth = linear_to_sector(sector_to_linear(img, **geom), **geom)
    assert np.abs(smooth - img)[fan].mean() < 0.3  # bilinear: a blurred copy


@pytest.mark.parametrize("angle", [45.0, 90.0, 160.0])
def test_sector_is_zero_outside_fan(angle):
    img = np.random.RandomState(0).rand(3, 2, 32, 40).astype(np.float32) + 0.5
    out = linear_to_sector(img, angle=angle)
    fan = fan_mask((32, 40), angle=angle)
    assert out.shape == img.shape and out.dtype == np.float32
    assert np.all(out[..., ~fan] == 0) and np.all(out[..., fan] > 0)
    assert 0.2 < fan.mean() < 0.9


def test_geometry_parameters_and_tensors():
    img = torch.ones(1, 1, 32, 32)
    out = linear_to_sector(img, apex=(2.0, 16.0), outer_radius=25.0, angle=60, inner_radius=0.4)
    assert isinstance(out, torch.Tensor)
    rows, cols = torch.nonzero(out[0, 0] > 0, as_tuple=True)
    r = torch.sqrt((rows - 2.0) ** 2 + (cols - 16.0) ** 2)
    assert r.min() >= 0.4 * 25 - 1 and r.max() <= 25 + 1
    assert linear_to_sector(np.ones((16, 16)), out_shape=(20, 24)).shape == (20, 24)


def test_converter_and_mode_detection():
    img = np.random.RandomState(0).rand(4, 32, 32).astype(np.float32) + 0.1
    conv = ScanModeConverter()
    fan = conv.fit_transform(img)
    assert detect_scan_mode(img) == "linear" and detect_scan_mode(fan) == "sector"
    assert detect_scan_mode(conv.transform(fan)) == "linear"  # opposite of sector
    np.testing.assert_allclose(ScanModeConverter(to="sector").fit_transform(img), fan)
    with pytest.raises(ValueError, match="'to' parameter"):
        ScanModeConverter(to="fan").fit(img)
    with pytest.raises(ValueError, match="angle"):
        linear_to_sector(img, angle=270)
    with pytest.raises(ValueError, match="shape"):
        linear_to_sector(np.ones(5))


# ------------------------------------------------------------ sparse context
def test_sparse_token_count_equals_positive_body_positions():
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(3, 2, 8, 4, 4, generator=g)
    body = torch.randn(3, 2, 1, 4, 4, generator=g)
    body[2] = -1.0  # third clip: the body head selects nothing
    tokens, valid, counts, pos = select_sparse_tokens(feats, body)
    expected = (body > 0).reshape(3, -1).sum(1)
    torch.testing.assert_close(counts, expected)
    assert counts[2] == 0 and tokens.shape == (3, int(expected.max()), 8)
    torch.testing.assert_close(valid.sum(1), expected)
    # the kept tokens are exactly the features at positive positions, in order
    flat = feats.permute(0, 1, 3, 4, 2).reshape(3, -1, 8)
    for b in range(3):
        keep = (body[b] > 0).reshape(-1)
        torch.testing.assert_close(tokens[b][valid[b]], flat[b][keep])
        cells = torch.nonzero(keep)[:, 0] % 16
        torch.testing.assert_close(pos[b][valid[b]], torch.stack([cells // 4, cells % 4], -1))
    _, _, dense, _ = select_sparse_tokens(feats, body, dense=True)
    assert (dense == 2 * 16).all()


def test_network_runs_when_no_token_is_selected():
    torch.manual_seed(0)
    net = ASTRNet(1, 3, width=4, dim=16, heads=2)
    with torch.no_grad():
        for head in net.body:  # every auxiliary frame's body head rejects every position
            head[-1].bias.fill_(-1e4)
    x = torch.randn(2, 3, 1, 32, 32)
    out = net(x)
    assert (out.n_tokens == 0).all() and torch.isfinite(out.logits).all()
    out.logits.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)


def test_product_fusion_shapes_and_gradients():
    torch.manual_seed(0)
    fusion = ProductFusion(8)
    f3, f4, f5 = (torch.randn(2, 8, s, s, requires_grad=True) for s in (8, 4, 2))
    out = fusion(f3, f4, f5)
    assert out.shape == (2, 8, 8, 8)
    out.square().sum().backward()
    # every stage reaches the output (the products gate the finer stages by the coarser)
    assert all(f.grad is not None and f.grad.abs().sum() > 0 for f in (f3, f4, f5))
    # the three factors of the product: zeroing the coarsest stage's projection kills b*c, a*b*c
    with torch.no_grad():
        fusion.proj[2][0].weight.zero_()
        fusion.proj[2][1].bias.fill_(-10.0)  # ReLU(BN(0) - 10) = 0: c == 0
        zero = fusion(f3, f4, f5)
        ref = fusion.out(torch.zeros(2, 24, 8, 8))
    torch.testing.assert_close(zero, ref)


@pytest.mark.parametrize("variant", [
    dict(fusion="product"),
    # the forms of an earlier version, kept for the ablation benchmark
    dict(fusion="product", shared_body=True, pos_conv="depthwise", mixpool_conv=False,
         frame_embedding=True),
])
def test_network_variants_run_and_train(variant):
    torch.manual_seed(0)
    net = ASTRNet(1, 3, width=4, dim=16, heads=2, **variant)
    x = torch.randn(2, 3, 1, 32, 32)
    out = net(x)
    assert out.logits.shape == (2, 1, 32, 32)
    assert out.body_logits.shape == (2, 2, 1, 8, 8)  # tokens stay at a quarter of the frame
    loss, _ = astr_loss(out, (torch.rand(2, 3, 32, 32) > 0.7).float())
    loss.backward()
    # every parameter gets a gradient, the fusion's and every per-frame body head's included
    missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert not missing, missing
    assert len(net.body) == (1 if variant.get("shared_body") else 2)  # one head per aux frame
    assert (net.frame_embed is None) == (not variant.get("frame_embedding"))
    assert net.local[0].pos.groups == (16 if variant.get("pos_conv") == "depthwise" else 1)
    assert isinstance(net.mixpool[0].conv, torch.nn.Identity) == (variant.get("mixpool_conv")
                                                                  is False)
    # single frames: no context, the fusion still applies
    single = ASTRNet(1, 1, width=4, dim=16, heads=2, fusion=variant["fusion"])
    assert single(x[:, :1]).logits.shape == (2, 1, 32, 32)


def test_estimator_fusion_option(videos):
    X, M, _ = videos
    est = ASTRSegmenter(fusion="product", width=4, embed_dim=16, num_heads=2, max_iter=1,
                        scan_augment=False, random_state=0, device="cpu").fit(X, M)
    assert est.module_.fusion is not None and est.predict(X).shape == M.shape
    with pytest.raises(ValueError, match="'fusion' parameter"):
        ASTRSegmenter(fusion="sum", max_iter=1, device="cpu").fit(X, M)


def test_make_clips():
    np.testing.assert_array_equal(make_clips(4, 3), [[0, 1, 2], [1, 0, 3], [2, 1, 0], [3, 2, 1]])
    np.testing.assert_array_equal(make_clips(1, 3), [[0, 0, 0]])


# ------------------------------------------------------------------- data
def test_synthetic_videos(videos):
    X, M, modes = videos
    assert X.shape == M.shape == (6, 3, 32, 32) and X.dtype == np.float32
    assert list(modes) == ["linear", "sector"] * 3
    assert 0 <= X.min() and X.max() <= 1 and set(np.unique(M)) == {0, 1}
    assert [detect_scan_mode(v) for v in X] == list(modes)
    fan = fan_mask((32, 32))
    assert np.all(X[1][:, ~fan] == 0) and np.all(M[1][:, ~fan] == 0)
    # the lesion is darker than its surroundings
    lin = X[::2]
    assert lin[M[::2] == 1].mean() < lin[M[::2] == 0].mean() - 0.1
    a, _, _ = make_ultrasound_videos(2, n_frames=2, random_state=3)
    np.testing.assert_array_equal(a, make_ultrasound_videos(2, n_frames=2, random_state=3)[0])


def test_load_ultrasound_folder(tmp_path):
    from PIL import Image

    rng = np.random.RandomState(0)
    for v, n in (("a", 3), ("b", 2)):
        for sub in ("frames", "masks"):
            (tmp_path / v / sub).mkdir(parents=True)
        for t in range(n):
            Image.fromarray(rng.randint(0, 256, (16, 16), dtype=np.uint8)).save(
                tmp_path / v / "frames" / f"{t:03d}.png")
            np.save(tmp_path / v / "masks" / f"{t:03d}.npy", ellipse(16) * 255)
    vids, masks, names = load_ultrasound_folder(tmp_path)
    assert names == ["a", "b"] and [len(v) for v in vids] == [3, 2]
    assert vids[0].dtype == np.float32 and vids[0].max() <= 1
    np.testing.assert_array_equal(masks[1][0], ellipse(16))
    (tmp_path / "b" / "masks" / "001.npy").unlink()
    with pytest.raises(ValueError, match="no mask"):
        load_ultrasound_folder(tmp_path)
    with pytest.raises(ValueError, match="not a folder"):
        load_ultrasound_folder(tmp_path / "missing")


def test_metrics():
    t = np.zeros((2, 4, 4), np.uint8)
    t[:, :2] = 1
    p = t.copy()
    p[1] = 0
    p[1, 0] = 1  # half of the lesion of frame 1
    s = segmentation_scores(t, p)
    assert s["dice"] == pytest.approx((1 + 2 * 4 / 12) / 2)
    assert s["iou"] == pytest.approx((1 + 0.5) / 2)
    assert s["sensitivity"] == pytest.approx(0.75) and s["specificity"] == 1.0
    assert s["mae"] == pytest.approx(4 / 32)
    assert dice_score(np.zeros((1, 3, 3)), np.zeros((1, 3, 3))) == 1.0
    with pytest.raises(ValueError, match="frames"):
        dice_score(t, p[:1])


# -------------------------------------------------------------- estimator
def test_fit_predict_score(videos, fitted):
    X, M, _ = videos
    pred = fitted.predict(X)
    assert pred.shape == M.shape and pred.dtype == np.uint8
    proba = fitted.predict_proba(X)
    assert proba.shape == M.shape and 0 <= proba.min() and proba.max() <= 1
    assert fitted.score(X, M) == pytest.approx(dice_score(M, pred))
    scores = fitted.evaluate(X, M)
    assert set(scores) == {"dice", "iou", "sensitivity", "specificity", "mae"}
    assert scores["dice"] == pytest.approx(fitted.score(X, M))
    # lists of videos of different lengths, 5-D (channel) input
    out = fitted.predict([X[0], X[1][:2]])
    assert isinstance(out, list) and [o.shape for o in out] == [(3, 32, 32), (2, 32, 32)]
    np.testing.assert_array_equal(out[0], pred[0])
    np.testing.assert_array_equal(fitted.predict(X[:, :, None]), pred)
    counts = fitted.context_tokens(X)
    assert counts.shape == (6, 3) and (counts >= 0).all() and (counts <= 2 * 8 * 8).all()
    assert {"loss", "loss_key", "token_fraction"} <= set(fitted.history_[0])


def test_dense_context_and_single_frame(videos, fitted):
    X, M, _ = videos
    dense = clone(fitted).set_params(context="dense")
    dense.__dict__.update({k: v for k, v in fitted.__dict__.items() if k.endswith("_")})
    assert (dense.context_tokens(X) == 2 * 8 * 8).all()
    single = ASTRSegmenter(1, max_iter=1, random_state=0, **TINY).fit(X, M)
    assert (single.context_tokens(X) == 0).all() and single.predict(X).shape == M.shape


def test_scan_augment_doubles_data_in_both_modes(videos):
    X, M, modes = videos
    est = ASTRSegmenter(3, max_iter=1, random_state=0, **TINY)
    vids, masks, _ = est._validate_videos(X, M, reset=True)
    aug_v, aug_m = est._augment(vids, masks, None)
    assert len(aug_v) == 12
    got = [detect_scan_mode(v) for v in aug_v]
    assert got[:6] == list(modes) and got[6:] == ["sector" if m == "linear" else "linear"
                                                  for m in modes]
    assert got.count("linear") == got.count("sector")
    with pytest.raises(ValueError, match="scan_modes"):
        est._augment(vids, masks, ["linear"] * 5 + ["convex"])


# one temporal-vs-single-frame comparison, fixed seeds: the lesion fades on ~30% of the
# noisy frames, where only the earlier frames (sparse context) tell where it is.
# Seeds 0, 1, 2 gave 0.73 / 0.79 / 0.79 (temporal) vs 0.68 / 0.71 / 0.71 (single frame).
@pytest.mark.slow
def test_temporal_model_beats_single_frame():
    kw = dict(n_frames=6, image_size=32, scan_mode="linear")
    X, M, _ = make_ultrasound_videos(16, random_state=0, **kw)
    Xt, Mt, _ = make_ultrasound_videos(8, random_state=1, **kw)
    common = dict(max_iter=12, random_state=0, scan_augment=False, device="cpu")
    temporal = ASTRSegmenter(3, **common).fit(X, M).score(Xt, Mt)
    single = ASTRSegmenter(1, **common).fit(X, M).score(Xt, Mt)
    assert temporal > single + 0.03, (temporal, single)


CHECKS = [
    ec.check_estimator_cloneable,
    ec.check_estimator_tags_renamed,
    ec.check_valid_tag_types,
    ec.check_estimator_repr,
    ec.check_no_attributes_set_in_init,
    ec.check_do_not_raise_errors_in_init_or_set_params,
    ec.check_mixin_order,
    ec.check_parameters_default_constructible,
    ec.check_get_params_invariance,
    ec.check_set_params,
]


# The model maps videos (n, T, [C,] H, W) to per-frame masks: the data-driven sklearn
# checks feed 2-D (n_samples, n_features) X and 1-D y, which have no meaning here (the
# estimator says so with input_tags.two_d_array=False). The API checks that need no
# data run as they are; their data-driven counterparts are below on videos.
@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_sklearn_api_checks(check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check("ASTRSegmenter", ASTRSegmenter(**TINY))


def test_fit_contract(videos):
    X, M, _ = videos
    X_ro, M_ro = X.copy(), M.copy()
    X_ro.flags.writeable = M_ro.flags.writeable = False
    est = ASTRSegmenter(3, max_iter=1, random_state=0, **TINY)
    params = clone(est).get_params()
    with pytest.raises(NotFittedError):
        est.predict(X)
    assert est.fit(X_ro, M_ro) is est  # read-only input, fit returns self
    np.testing.assert_array_equal(X_ro, X)
    assert est.get_params() == params  # parameters untouched
    assert est.n_features_in_ == 32 * 32 and est.input_shape_ == (1, 32, 32)
    assert not [k for k in vars(est) if not k.startswith("_") and k.endswith("_")
                and k not in ("module_", "optimizer_", "input_shape_", "n_features_in_",
                              "mean_", "std_", "history_", "loss_curve_", "n_iter_",
                              "best_loss_", "device_", "peak_activation_bytes_", "peak_memory_bytes_",
                              "peak_cuda_memory_bytes_", "validation_scores_",
                              "best_validation_score_")]


def test_reproducible_clone_pickle_save_load(videos, fitted, tmp_path):
    X, M, _ = videos
    expected = fitted.predict_proba(X)
    again = ASTRSegmenter(3, max_iter=2, random_state=0, **TINY).fit(X, M)
    np.testing.assert_array_equal(again.predict_proba(X), expected)
    other = ASTRSegmenter(3, max_iter=2, random_state=1, **TINY).fit(X, M)
    assert not np.array_equal(other.predict_proba(X), expected)
    c = clone(fitted)
    assert c.get_params() == fitted.get_params() and not hasattr(c, "module_")
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(fitted)).predict_proba(X), expected)
    fitted.save(tmp_path / "astr.pt")
    loaded = ASTRSegmenter.load(tmp_path / "astr.pt")
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)
    assert loaded.mean_ == fitted.mean_ and loaded.get_params() == fitted.get_params()
    loaded.partial_fit(X, M)  # training resumes
    assert loaded.n_iter_ == fitted.n_iter_ + 1


def test_bad_input(videos, fitted):
    X, M, _ = videos
    est = ASTRSegmenter(3, max_iter=1, **TINY)
    with pytest.raises(ValueError, match="shape"):
        est.fit(X[0], M[0])  # one video, not a batch
    with pytest.raises(ValueError, match="shape"):
        est.fit(X.reshape(6, -1), M)
    with pytest.raises(ValueError, match=r"masks\[0\] has shape"):
        est.fit(X, M[:, :2])
    with pytest.raises(ValueError, match="binary"):
        est.fit(X, M * 2)
    bad = X.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.fit(bad, M)
    with pytest.raises(ValueError, match="2 videos but 1"):
        est.fit(X[:2], M[:1])
    with pytest.raises(ValueError, match="context"):
        ASTRSegmenter(context="full", **{k: v for k, v in TINY.items()}).fit(X, M)
    with pytest.raises(ValueError, match="num_heads"):
        ASTRSegmenter(embed_dim=10, num_heads=4).fit(X, M)
    with pytest.raises(ValueError, match="fitted on frames of shape"):
        fitted.predict(X[:, :, :16, :16])
    with pytest.raises(ValueError, match="empty"):
        fitted.predict([])


def public_names():
    names = []
    for name in neural.video.__all__:
        obj = getattr(neural.video, name)
        names.append(f"{obj.__module__}.{obj.__qualname__}")
        if inspect.isclass(obj):
            names += [f"{obj.__module__}.{obj.__qualname__}.{m}" for m, f in vars(obj).items()
                      if not m.startswith("_") and callable(f)]
    return sorted(names)


@pytest.mark.parametrize("name", public_names())
def test_docstrings(name):
    validate = pytest.importorskip("numpydoc.validate").validate
    ignored = {"ES01", "SA01", "EX01", "GL08", "RT02"}
    assert not [(c, m) for c, m in validate(name)["errors"] if c not in ignored]
