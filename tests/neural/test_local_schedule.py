"""Layout of local learning: splits and the papers' worked examples."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neural.local import (
    auglocal_depths,
    infopro_loss_weights,
    man_loss_weights,
    split_layers,
    uniform_sample_layers,
)


# ---------------------------------------------------------------- AugLocal
@pytest.mark.parametrize(
    "n_modules, depth, expected",
    [
        # ResNet-32 (16 layers), D=2, c=0.5: K' = 16 - 2 = 14, every depth is 2
        (14, 2, [2] * 13),
        # ResNet-110 (55 layers), D=3, c=0.5: K' = 52, depth 3 up to i=24, then 2
        (52, 3, [3] * 25 + [2] * 26),
        # ResNet-32, D=5, c=0.5: K' = 11
        (11, 5, [5, 5, 5, 4, 4, 4, 4, 3, 3, 3]),
    ],
)
def test_pyramid_depths_worked_examples(n_modules, depth, expected):
    assert auglocal_depths(n_modules, depth, 0.5) == expected


def test_pyramid_off_is_constant():
    assert auglocal_depths(10, 4, 0.0) == [4] * 9


@given(st.integers(3, 60), st.integers(1, 8), st.floats(0, 1))
def test_pyramid_depths_monotone_and_bounded(n_modules, depth, coeff):
    depths = auglocal_depths(n_modules, depth, coeff)
    assert len(depths) == n_modules - 1
    assert depths[0] == depth
    assert all(1 <= d <= depth for d in depths)
    assert all(a >= b for a, b in zip(depths, depths[1:]))


@pytest.mark.parametrize(
    "layer, n_layers, depth, expected",
    [
        (0, 16, 2, [8, 15]),
        (11, 16, 2, [13, 15]),
        (12, 16, 2, [14, 15]),
        (0, 55, 3, [18, 36, 54]),
        (1, 55, 3, [19, 36, 54]),
        (13, 16, 2, [14, 15]),  # fewer later layers than the depth: take them all
        (14, 16, 3, [15]),
    ],
)
def test_uniform_sampling_worked_examples(layer, n_layers, depth, expected):
    assert uniform_sample_layers(layer, n_layers, depth) == expected


@given(st.integers(2, 60).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 2))),
       st.integers(1, 10))
def test_uniform_sampling_properties(n_and_layer, depth):
    n_layers, layer = n_and_layer
    picks = uniform_sample_layers(layer, n_layers, depth)
    assert picks[-1] == n_layers - 1
    assert len(picks) == min(depth, n_layers - 1 - layer)
    assert all(layer < a < b for a, b in zip(picks, picks[1:])) and picks[0] > layer


# ------------------------------------------------------------------ splits
@settings(max_examples=60)
@given(st.integers(1, 40).flatmap(lambda n: st.tuples(st.just(n), st.integers(1, n))),
       st.sampled_from(["even", "layerwise", "memory"]))
def test_split_covers_all_layers_contiguously(n_and_k, strategy):
    n_layers, k = n_and_k
    costs = np.linspace(4, 1, n_layers)
    bounds = split_layers(n_layers, k, strategy, costs)
    assert len(bounds) == k
    assert bounds[0][0] == 0 and bounds[-1][1] == n_layers
    assert all(a < b for a, b in bounds)
    assert all(b == c for (_, b), (c, _) in zip(bounds, bounds[1:]))


def test_split_even_and_layerwise():
    assert split_layers(16, 4) == [(0, 4), (4, 8), (8, 12), (12, 16)]
    assert split_layers(16, 14, "layerwise")[-1] == (13, 16)  # AugLocal, D=2


def test_split_memory_is_front_loaded_and_optimal():
    # activation volume of ResNet-32 layers: 16x32x32, 32x16x16, 64x8x8
    costs = [4.0] * 6 + [2.0] * 5 + [1.0] * 5
    bounds = split_layers(16, 3, "memory", costs)
    sums = [sum(costs[a:b]) for a, b in bounds]
    assert bounds[0][1] - bounds[0][0] < bounds[-1][1] - bounds[-1][0]
    # brute force over all contiguous splits into 3 parts
    best = min(
        max(sum(costs[:i]), sum(costs[i:j]), sum(costs[j:]))
        for i in range(1, 15) for j in range(i + 1, 16)
    )
    assert max(sums) == best


def test_split_explicit_points():
    assert split_layers(10, 3, (2, 5)) == [(0, 3), (3, 6), (6, 10)]
    with pytest.raises(ValueError, match="n_local_modules=3"):
        split_layers(10, 2, (2, 5))
    with pytest.raises(ValueError, match="increasing"):
        split_layers(10, 3, (5, 2))


@pytest.mark.parametrize("k", [0, 17])
def test_split_bad_module_count(k):
    with pytest.raises(ValueError, match="n_local_modules"):
        split_layers(16, k)


# ----------------------------------------------------------------- InfoPro
def test_infopro_weights_interpolate_linearly():
    w = infopro_loss_weights(5, (5.0, 0.0, 1.0, 2.0))  # ResNet-32 K=4 style tuple
    assert len(w) == 4
    assert w[0] == (5.0, 0.0) and w[-1] == (1.0, 2.0)
    np.testing.assert_allclose(np.diff([a for a, _ in w]), -4 / 3)
    assert infopro_loss_weights(2, (5.0, 0.5, 0.0, 1.0)) == [(5.0, 0.5)]


@given(st.integers(6, 60), st.lists(st.integers(1, 3), min_size=1, max_size=20),
       st.tuples(*[st.floats(0, 10)] * 4))
def test_man_weights_follow_the_reference_for_enough_modules(K, stages, lambdas):
    # the reference: ratio = stage / (K - 2)
    for s, (recon, task) in zip(stages, man_loss_weights(stages, K, lambdas)):
        r = s / (K - 2)
        assert recon == pytest.approx(lambdas[0] * (1 - r) + lambdas[2] * r)
        assert task == pytest.approx(lambdas[1] * (1 - r) + lambdas[3] * r)


@pytest.mark.parametrize("K", [3, 4, 5])
def test_man_weights_stay_positive_for_few_modules(K):
    # the reference's stage / (K - 2) would reach 1 or more (zero or negative weights)
    weights = man_loss_weights([1, 2, 3], K, (5, 0.5, 0, 0))
    assert all(recon > 0 and task > 0 for recon, task in weights)
    assert weights[2] == pytest.approx((5 * 0.25, 0.5 * 0.25))
    assert man_loss_weights([3], 2, (5, 0.5, 0, 0)) == [(5.0, 0.5)]  # K = 2: ratio 0
