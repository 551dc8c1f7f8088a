"""Mechanics of local learning: isolation, MAN's EMA, AugLocal's aux nets, memory, learning."""

import copy

import numpy as np
import pytest
import torch

from neural import LocalLearningClassifier
from neural.backbones import BasicBlock, make_resnet
from neural.datasets import make_shapes
from neural.local import LocalNet, auglocal_depths, split_layers, uniform_sample_layers

LOCAL = ["dgl", "infopro", "man", "auglocal"]


def make_net(method, n_modules=4, backbone="resnet14", width=4, size=8, **kwargs):
    torch.manual_seed(0)
    bb = make_resnet(backbone, width=width, in_channels=3, n_classes=10)
    strategy = "layerwise" if method == "auglocal" else "even"
    bounds = split_layers(len(bb.layers), n_modules, strategy)
    return LocalNet(bb, bounds, method, 10, (3, size, size), **kwargs)


def train_step(net, x, y):
    """The trainer's step on LocalLearningClassifier's losses (no optimizer step): each loss the
    estimator yields is backpropagated before the next module runs."""
    est = LocalLearningClassifier()
    est.module_ = net
    for loss, _ in est._train_losses(x, y, None):
        loss.backward()


def batch(n=16, size=8, seed=0):
    X, y = make_shapes(n, image_size=size, random_state=seed)
    return torch.from_numpy(X), torch.from_numpy(y)


@pytest.mark.parametrize("method", LOCAL)
def test_no_gradient_crosses_module_borders(method):
    net = make_net(method)
    x, y = batch()
    losses = [loss for _, loss in net.local_losses(x, y)]  # keep every graph
    K = len(losses)
    for k in range(K):
        for j in range(K):
            grads = torch.autograd.grad(
                losses[k], net.module_parameters(j), allow_unused=True, retain_graph=True
            )
            if j == k:
                assert all(g is not None for g in grads)
                assert any(g.abs().sum() > 0 for g in grads)
            else:
                assert all(g is None for g in grads), (k, j)


def test_isolation_check_detects_crossing_gradients():
    # negative control: the end-to-end loss does reach the first module
    net = make_net("dgl")
    x, y = batch()
    grads = torch.autograd.grad(
        torch.nn.functional.cross_entropy(net(x), y), net.module_parameters(0), allow_unused=True
    )
    assert all(g is not None for g in grads)


@pytest.mark.parametrize("method", LOCAL)
def test_train_step_gradient_of_module_is_its_own_loss(method):
    net = make_net(method)
    ref = copy.deepcopy(net)
    x, y = batch()
    net.zero_grad()
    train_step(net, x, y)
    for k in range(len(net.bounds)):
        own = copy.deepcopy(ref)
        own.zero_grad()
        loss = dict(own.local_losses(x, y))[k] if k == 0 else _kth_loss(own, x, y, k)
        loss.backward()
        for p, q in zip(net.module_parameters(k), own.module_parameters(k)):
            torch.testing.assert_close(p.grad, q.grad)


def _kth_loss(net, x, y, k):
    for j, loss in net.local_losses(x, y):
        if j == k:
            return loss
        loss.backward()  # earlier modules' losses only touch earlier parameters


def test_bp_has_one_module_and_full_gradient():
    net = make_net("bp", n_modules=1)
    x, y = batch()
    train_step(net, x, y)
    assert all(p.grad is not None for p in net.parameters())
    with pytest.raises(ValueError, match="one module"):
        make_net("bp", n_modules=2)


# ---------------------------------------------------------------------- MAN
@pytest.mark.parametrize("base", ["dgl", "infopro"])
def test_man_ema_starts_as_copy_of_next_block_and_is_frozen(base):
    net = make_net("man", man_base=base)
    for k, aux in enumerate(net.aux):
        nxt = net.backbone.layers[net.bounds[k][1]]
        assert isinstance(nxt, BasicBlock)
        for pe, pn in zip(aux.ema.parameters(), nxt.parameters(), strict=True):
            assert not pe.requires_grad and pe is not pn
            torch.testing.assert_close(pe, pn)
        # the learnable-bias path has the same architecture but its own weights
        assert all(p.requires_grad for p in aux.lb.parameters())
        assert any(
            not torch.equal(a, b) for a, b in zip(aux.lb.parameters(), nxt.parameters())
        )


def test_man_ema_update_rule():
    m = 0.9
    net = make_net("man", man_base="dgl", man_momentum=m)
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.5)
    x, y = batch()
    # one step so that the EMA and the next block differ
    opt.zero_grad()
    train_step(net, x, y)
    opt.step()
    ema_before = [[p.clone() for p in a.ema.parameters()] for a in net.aux]
    next_before = [
        [p.clone() for p in net.backbone.layers[stop].parameters()] for _, stop in net.bounds[:-1]
    ]
    assert any(not torch.equal(a, b) for a, b in zip(ema_before[0], next_before[0]))
    opt.zero_grad()
    train_step(net, x, y)
    opt.step()
    for aux, eb, nb in zip(net.aux, ema_before, next_before):
        for p, e, b in zip(aux.ema.parameters(), eb, nb):
            # the EMA tracks the next block's weights before this step's update
            torch.testing.assert_close(p, m * e + (1 - m) * b)


def test_man_gradient_flows_through_frozen_ema_into_module():
    net = make_net("man", man_base="dgl")
    x, y = batch()
    losses = list(net.local_losses(x, y))
    aux = net.aux[0]
    g_ema = torch.autograd.grad(losses[0][1], net.module_parameters(0), retain_graph=True)
    # the same loss without the EMA branch gives a different module gradient
    with torch.no_grad():
        for p in aux.ema.parameters():
            p.mul_(0.0)
    h = net.run_module(0, x)
    g_no = torch.autograd.grad(aux(h, None, y), net.module_parameters(0))
    assert any(not torch.allclose(a, b) for a, b in zip(g_ema, g_no))
    assert all(p.grad is None for p in aux.ema.parameters())


def test_man_ema_not_optimised():
    X, y = make_shapes(40, image_size=8, random_state=0)
    clf = LocalLearningClassifier(
        method="man", n_local_modules=3, backbone="resnet8", width=4, max_iter=1,
        random_state=0, device="cpu",
    ).fit(X, y)
    optimised = {id(p) for g in clf.optimizer_.param_groups for p in g["params"]}
    ema = [p for a in clf.module_.aux for p in a.ema.parameters()]
    assert ema and not any(id(p) in optimised for p in ema)


# ----------------------------------------------------------------- AugLocal
@pytest.mark.parametrize("depth, coeff", [(2, 0.5), (3, 1.0), (1, 0.0)])
def test_auglocal_aux_nets_follow_sampled_layers(depth, coeff):
    n_layers = 10  # resnet20
    K = n_layers - depth
    net = make_net("auglocal", n_modules=K, backbone="resnet20", size=16,
                   aux_depth=depth, pyramid_coeff=coeff)
    depths = auglocal_depths(K, depth, coeff)
    channels = net.backbone.layer_channels
    sizes = [s[1] for s in net.layer_shapes]
    for k, aux in enumerate(net.aux):
        picks = uniform_sample_layers(k, n_layers, depths[k])
        blocks = list(aux.blocks)
        assert [b.out_channels for b in blocks] == [channels[i] for i in picks]
        h = aux.blocks(torch.zeros(2, *net.layer_shapes[k]))
        # resolution of the imitated layer, halving at most once per block (reference rule)
        assert h.shape[-1] == max(sizes[picks[-1]], sizes[k] // 2 ** len(blocks))
        has_bn = any(isinstance(m, torch.nn.BatchNorm1d) for m in aux.head)
        assert has_bn == (len(blocks) <= 1)
        # fresh weights: neither shared with nor copied from the primary layers
        for b, i in zip(blocks, picks):
            assert b.conv2.weight is not net.backbone.layers[i].conv2.weight
            assert not torch.equal(b.conv2.weight, net.backbone.layers[i].conv2.weight)


# ------------------------------------------------------------------ inference
def test_predict_uses_backbone_only(shapes_small):
    X, y, Xt, _ = shapes_small
    clf = LocalLearningClassifier(
        method="infopro", n_local_modules=3, backbone="resnet8", width=4, max_iter=2,
        random_state=0, device="cpu",
    ).fit(X, y)
    before = clf.predict_proba(Xt)
    with torch.no_grad():
        for p in clf.module_.aux.parameters():
            p.normal_()
    np.testing.assert_array_equal(clf.predict_proba(Xt), before)
    with torch.no_grad():
        clf.module_.eval()
        ref = clf.module_.backbone(torch.from_numpy(Xt)).softmax(1).double().numpy()
    np.testing.assert_allclose(before, ref, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------- memory
def _peak(method, K, **kw):
    X, y = make_shapes(64, image_size=16, random_state=0)
    clf = LocalLearningClassifier(
        method=method, n_local_modules=K, backbone="resnet20", width=8, max_iter=1,
        batch_size=32, random_state=0, device="cpu", **kw,
    ).fit(X, y)
    return clf.peak_activation_bytes_


@pytest.mark.parametrize(
    "method, K, kw",
    [("dgl", 4, {}), ("infopro", 4, {}), ("man", 4, {"man_base": "dgl"}),
     ("man", 8, {"man_base": "infopro"}), ("auglocal", 8, {})],
)
def test_local_learning_saves_activation_memory(method, K, kw):
    bp = _peak("bp", 1)
    assert _peak(method, K, **kw) < bp


def test_memory_shrinks_with_more_modules_and_is_deterministic():
    peaks = [_peak("dgl", K) for K in (2, 4, 8)]
    assert peaks[0] > peaks[1] > peaks[2]
    assert _peak("dgl", 4) == peaks[1]


# ------------------------------------------------------------------- learning
@pytest.mark.parametrize("method", ["bp"] + LOCAL)
def test_each_method_learns_synthetic_shapes(method, shapes_small):
    X, y, Xt, yt = shapes_small
    clf = LocalLearningClassifier(
        method=method, n_local_modules=3, backbone="resnet8", width=8, max_iter=8,
        batch_size=32, learning_rate_init=0.01, random_state=0, device="cpu",
    ).fit(X, y)
    assert clf.score(Xt, yt) > 0.6  # chance is 0.1
    assert clf.history_[-1]["loss"] < clf.history_[0]["loss"]
    if method != "bp":
        assert {f"loss_module_{k}" for k in range(3)} <= set(clf.history_[0])


# ------------------------------------------------------ supervised contrastive
def _supcon_loop(z, y, t):
    z = torch.nn.functional.normalize(z, dim=1)
    terms = []
    for i in range(len(y)):
        others = [a for a in range(len(y)) if a != i]
        pos = [p for p in others if y[p] == y[i]]
        if not pos:
            continue
        denom = torch.logsumexp(torch.stack([z[i] @ z[a] / t for a in others]), 0)
        terms.append(-torch.stack([z[i] @ z[p] / t - denom for p in pos]).mean())
    return torch.stack(terms).mean()


def test_supervised_contrastive_loss_matches_definition():
    from neural.local import supervised_contrastive_loss

    g = torch.Generator().manual_seed(0)
    z = torch.randn(12, 5, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0, 1, 0, 3, 1, 2, 2, 0, 4])  # 3 and 4 have no positive
    torch.testing.assert_close(supervised_contrastive_loss(z, y, 0.5), _supcon_loop(z, y, 0.5))
    # aligned same-class embeddings give a lower loss than random ones
    aligned = torch.nn.functional.one_hot(y, 5).double()
    assert supervised_contrastive_loss(aligned, y, 0.5) < supervised_contrastive_loss(z, y, 0.5)


def test_infopro_contrast_learns(shapes_small):
    X, y, Xt, yt = shapes_small
    clf = LocalLearningClassifier(
        method="infopro", infopro_task_loss="contrast", n_local_modules=3, backbone="resnet8",
        width=8, max_iter=8, batch_size=64, learning_rate_init=0.01, random_state=0,
        device="cpu",
    ).fit(X, y)
    assert clf.score(Xt, yt) > 0.6
