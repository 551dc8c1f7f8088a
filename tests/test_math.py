"""Property tests of the math: gradients, projections, recovery of the factors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.utils import check_random_state

from sdlearn._backend import get_namespace
from sdlearn._bcd import BlockState, classifier_block, codes_gradient, dictionary_gradient, split_classifier
from sdlearn._lpgd import _LPGD
from sdlearn._objective import logistic_loss_grad
from sdlearn._problem import prepare_problem
from sdlearn._projection import GramProjector, SubspaceProjector, _orthonormalize, change_energy, residual_energy

xp = get_namespace(np.zeros(1))


def random_problem(seed, n, p, r, n_classes, n_aux, mode, alpha=0.7, xi=0.3, weighted=False):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    y = np.arange(n) % n_classes
    rng.shuffle(y)
    X_aux = rng.standard_normal((n, n_aux)) if n_aux else None
    w = rng.uniform(0.5, 2.0, n) if weighted else None
    return prepare_problem(X, y, X_aux=X_aux, sample_weight=w, mode=mode, n_components=r, xi=xi, alpha=alpha)


def finite_difference(f, x, rng, n_dirs=3, eps=1e-6):
    """Directional derivatives of ``f`` at ``x`` along random directions (central differences)."""
    dirs = [rng.standard_normal(x.shape) for _ in range(n_dirs)]
    return dirs, [(f(x + eps * v) - f(x - eps * v)) / (2 * eps) for v in dirs]


def assert_gradient(f, grad, x, seed=0):
    dirs, numeric = finite_difference(f, x, np.random.default_rng(seed))
    for v, num in zip(dirs, numeric):
        analytic = float(np.sum(grad * v))
        assert analytic == pytest.approx(num, rel=1e-5, abs=1e-6 * (1 + abs(num)))


shapes = st.tuples(
    st.integers(5, 25),  # n
    st.integers(3, 12),  # p
    st.integers(1, 3),  # r
    st.integers(2, 4),  # classes
    st.integers(0, 2),  # aux
    st.sampled_from(["filter", "feature"]),
    st.booleans(),  # weighted
)


@settings(max_examples=25, deadline=None)
@given(shapes, st.integers(0, 2**16))
def test_logistic_gradient_matches_finite_differences(shape, seed):
    n, _, _, n_classes, _, _, weighted = shape
    rng = np.random.default_rng(seed)
    S = rng.standard_normal((n, n_classes - 1)) * 3
    Y = np.eye(n_classes)[rng.integers(0, n_classes, n)][:, 1:]
    w = rng.uniform(0.5, 2.0, n) if weighted else np.ones(n)
    _, G = logistic_loss_grad(S, Y, w, xp)
    assert_gradient(lambda s: logistic_loss_grad(s, Y, w, xp)[0], G, S, seed)


def test_logistic_loss_is_stable_for_huge_scores():
    S = np.array([[800.0, -800.0], [-800.0, -800.0]])
    Y = np.array([[1.0, 0.0], [0.0, 0.0]])
    loss, G = logistic_loss_grad(S, Y, np.ones(2), xp)
    assert np.isfinite(loss) and loss == pytest.approx(0.0, abs=1e-12)
    assert np.all(np.isfinite(G))


@settings(max_examples=20, deadline=None)
@given(shapes, st.integers(0, 2**16))
def test_lpgd_classifier_gradient_matches_finite_differences(shape, seed):
    n, p, r, n_classes, n_aux, mode, weighted = shape
    if r > min(n, p):
        return
    pb = random_problem(seed, n, p, r, n_classes, n_aux, mode, weighted=weighted)
    solver = _LPGD(pb, "gram", check_random_state(0))
    rng = np.random.default_rng(seed)
    m = p if mode == "filter" else n
    T = rng.standard_normal((m, n_classes - 1))
    gamma = rng.standard_normal((n_aux, n_classes - 1)) if n_aux else None
    b = rng.standard_normal(n_classes - 1)

    def value(T_, gamma_, b_):
        return solver.classifier((T_, gamma_, b_)).value

    G = solver.classifier((T, gamma, b)).G
    gT, g_gamma, g_b = solver.gradients((T, gamma, b), G)
    assert_gradient(lambda t: value(t, gamma, b), gT, T, seed)
    assert_gradient(lambda c: value(T, gamma, c), g_b, b, seed)
    if n_aux:
        assert_gradient(lambda g: value(T, g, b), g_gamma, gamma, seed)


def factored_value(pb, W, C, beta, gamma, b):
    return pb.objective(W, C, beta, gamma, b)["objective"]


@settings(max_examples=20, deadline=None)
@given(shapes, st.integers(0, 2**16))
def test_bcd_block_gradients_match_finite_differences(shape, seed):
    n, p, r, n_classes, n_aux, mode, weighted = shape
    if r > min(n, p):
        return
    pb = random_problem(seed, n, p, r, n_classes, n_aux, mode, weighted=weighted)
    state = BlockState(n_steps=1, data_curvature=1.0)  # only the gradients are under test here
    rng = np.random.default_rng(seed)
    d = n_classes - 1
    W, C = rng.standard_normal((p, r)), rng.standard_normal((n, r))
    beta, b = rng.standard_normal((r, d)), rng.standard_normal(d)
    gamma = rng.standard_normal((n_aux, d)) if n_aux else None

    if mode == "filter":
        grad, _, value = dictionary_gradient(pb, state, C, beta, gamma, b)
        full = lambda V: factored_value(pb, V, C, beta, gamma, b)  # noqa: E731
        point = W
    else:
        grad, _, value = codes_gradient(pb, state, W, beta, gamma, b)
        full = lambda V: factored_value(pb, W, V, beta, gamma, b)  # noqa: E731
        point = C
    assert_gradient(full, grad(point), point, seed)
    # the block's value (used by the adaptive steps) is the objective up to a constant
    other = point + rng.standard_normal(point.shape)
    assert value(other) - value(point) == pytest.approx(full(other) - full(point), rel=1e-8, abs=1e-8)

    with_aux = gamma is not None
    theta = np.concatenate([beta, gamma, b[None, :]] if with_aux else [beta, b[None, :]])
    block = classifier_block(pb, W, C, with_aux)

    def value(t):
        beta_, gamma_, b_ = split_classifier(t, r, with_aux)
        return factored_value(pb, W, C, beta_, gamma_, b_)

    assert_gradient(value, block.evaluate(theta)[1], theta, seed)
    # the block's value is the objective up to the (fixed) reconstruction term
    other = theta + rng.standard_normal(theta.shape)
    assert block.evaluate(other)[0] - block.evaluate(theta)[0] == pytest.approx(value(other) - value(theta), rel=1e-8,
                                                                               abs=1e-8)


@settings(max_examples=30, deadline=None)
@given(
    st.integers(4, 40), st.integers(4, 40), st.integers(1, 4), st.integers(1, 3),
    st.floats(0.1, 10.0), st.integers(0, 2**16),
)
def test_gram_projection_is_the_best_rank_r_approximation(m, k, r, d, c, seed):
    r = min(r, m, k)
    rng = np.random.default_rng(seed)
    A, T = rng.standard_normal((m, k)), rng.standard_normal((m, d))
    M = np.hstack([A, c * T])
    U_ref, s_ref, _ = np.linalg.svd(M, full_matrices=False)
    projector = GramProjector(A, r, xp)
    basis = projector.project(T, c)
    np.testing.assert_allclose(basis.s, s_ref[:r], rtol=1e-7, atol=1e-8)
    if r < len(s_ref) and s_ref[r - 1] - s_ref[r] < 1e-6 * s_ref[0]:
        return  # the rank-r subspace is not unique
    best = U_ref[:, :r] @ U_ref[:, :r].T @ M
    np.testing.assert_allclose(basis.U @ basis.U.T @ M, best, atol=1e-7 * s_ref[0])
    # reconstruction error from the Gram quantities equals the direct one
    direct = np.sum((A - basis.U @ basis.U.T @ A) ** 2)
    assert residual_energy(projector, basis, np.sum(A * A)) == pytest.approx(direct, rel=1e-7, abs=1e-8 * np.sum(A * A))


def test_subspace_projection_reaches_the_exact_error():
    rng = np.random.default_rng(0)
    m, k, r = 200, 80, 5
    A = rng.standard_normal((m, r)) @ rng.standard_normal((r, k)) * 5 + rng.standard_normal((m, k))
    exact = GramProjector(A, r, xp)
    approx = SubspaceProjector(A, r, xp, check_random_state(0))
    T = rng.standard_normal((m, 2))
    errors = []
    for step in range(6):  # a slowly moving T, as in LPGD
        T = T + 0.05 * rng.standard_normal(T.shape)
        M = np.hstack([A, 2.0 * T])
        b_exact, b_approx = exact.project(T, 2.0), approx.project(T, 2.0)
        err_exact = np.sum((M - b_exact.U @ b_exact.U.T @ M) ** 2)
        err_approx = np.sum((M - b_approx.U @ b_approx.U.T @ M) ** 2)
        errors.append(err_approx / err_exact - 1)
    assert max(errors) < 1e-6


def captured(U, A, T, c):
    """``||U^T [A, c T]||_F^2``: the part of ``M = [A, c T]`` that the basis ``U`` keeps."""
    return np.sum((U.T @ A) ** 2) + c * c * np.sum((U.T @ T) ** 2)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(3, 60), st.integers(3, 60), st.integers(1, 5), st.integers(0, 3),
    st.sampled_from([1e-3, 0.3, 3.0]), st.booleans(), st.integers(0, 2**16),
)
def test_warm_subspace_projection_never_captures_less_than_its_start(m, k, r, d, c, low_rank, seed):
    """The descent guarantee of LPGD with the inexact projector: starting from a basis U, the new
    rank-r subspace keeps at least as much of [A, c T] as U itself, for any T."""
    r = min(r, m, k)
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, k))
    if low_rank:  # rank-deficient data: directions of zero energy must not break the basis
        A = rng.standard_normal((m, 1)) @ rng.standard_normal((1, k))
    projector = SubspaceProjector(A, r, xp, check_random_state(seed))
    warm = projector.project(rng.standard_normal((m, d)), c)
    for _ in range(3):
        T = rng.standard_normal((m, d)) * rng.uniform(0, 3)
        new = projector.project(T, c, warm=warm)
        assert new.U.shape == (m, r)
        np.testing.assert_allclose(new.U.T @ new.U, np.eye(r), atol=1e-9)
        np.testing.assert_allclose(new.E, A.T @ new.U, atol=1e-9 * max(1.0, np.linalg.norm(A)))
        scale = np.sum(A * A) + c * c * np.sum(T * T) + 1e-300
        assert captured(new.U, A, T, c) >= captured(warm.U, A, T, c) - 1e-10 * scale
        warm = new


def test_warm_subspace_projection_converges_on_close_singular_values():
    """Text-like spectra (singular values close together) are where plain subspace iteration
    crawls; the search direction of the block eigensolver gets to the exact error anyway."""
    rng = np.random.default_rng(3)
    m, k, r = 300, 200, 5
    left, _ = np.linalg.qr(rng.standard_normal((m, k)))
    right, _ = np.linalg.qr(rng.standard_normal((k, k)))
    A = (left * np.linspace(1.2, 1.0, k)) @ right.T  # the top 40 singular values within 4%
    T = np.zeros((m, 1))
    exact = np.sum(np.linalg.svd(A, compute_uv=False)[:r] ** 2)
    projector = SubspaceProjector(A, r, xp, check_random_state(0))
    deficits = [(exact - captured(projector.project(T, 1.0).U, A, T, 1.0)) / exact for _ in range(40)]
    assert deficits[-1] < 1e-8
    assert np.all(np.diff(deficits) <= 1e-12)  # monotone: each call starts from the last


@settings(max_examples=40, deadline=None)
@given(st.integers(5, 50), st.integers(0, 4), st.integers(1, 6), st.booleans(), st.integers(0, 2**16))
def test_orthonormalize_spans_the_complement(m, n_basis, n_cols, degenerate, seed):
    rng = np.random.default_rng(seed)
    n_basis = min(n_basis, m - 1)
    B = np.linalg.qr(rng.standard_normal((m, n_basis)))[0] if n_basis else np.zeros((m, 0))
    Y = rng.standard_normal((m, n_cols)) * np.logspace(0, 8, n_cols)  # graded, like a power step
    if degenerate:  # a repeated column and a column inside span(B)
        Y = np.hstack([Y, Y[:, :1], B @ rng.standard_normal((n_basis, 1))])
    A = rng.standard_normal((m, 7))
    Q, AtQ = _orthonormalize(Y, A.T @ Y, (B, A.T @ B), xp)
    np.testing.assert_allclose(Q.T @ Q, np.eye(Q.shape[1]), atol=1e-10)
    np.testing.assert_allclose(B.T @ Q, 0.0, atol=1e-10)
    np.testing.assert_allclose(AtQ, A.T @ Q, atol=1e-6 * np.linalg.norm(A))
    # span([B, Q]) contains span(Y): the residual of each column is at rounding level
    basis = np.hstack([B, Q])
    residual = Y - basis @ (basis.T @ Y)
    assert np.all(np.linalg.norm(residual, axis=0) <= 1e-8 * np.linalg.norm(Y, axis=0) + 1e-12)
    assert Q.shape[1] <= min(m - n_basis, np.linalg.matrix_rank(Y))


@pytest.mark.parametrize("shape, kind", [((12, 30), "gram"), ((40, 8), "gram"), ((40, 8), "subspace")])
def test_change_energy_matches_direct_difference(shape, kind):
    rng = np.random.default_rng(1)
    A = rng.standard_normal(shape)
    projector = GramProjector(A, 3, xp) if kind == "gram" else SubspaceProjector(A, 3, xp, check_random_state(0))
    b1 = projector.project(rng.standard_normal((shape[0], 2)), 1.0)
    b2 = projector.project(rng.standard_normal((shape[0], 2)), 2.0)
    direct = np.sum((b1.U @ b1.U.T @ A - b2.U @ b2.U.T @ A) ** 2)
    assert change_energy(projector, b1, b2) == pytest.approx(direct, rel=1e-6)


@settings(max_examples=15, deadline=None)
@given(shapes, st.integers(0, 2**16))
def test_bcd_classifier_hessian_product_matches_gradient_differences(shape, seed):
    n, p, r, n_classes, n_aux, mode, weighted = shape
    if r > min(n, p):
        return
    pb = random_problem(seed, n, p, r, n_classes, n_aux, mode, weighted=weighted)
    rng = np.random.default_rng(seed)
    W, C = rng.standard_normal((p, r)), rng.standard_normal((n, r))
    block = classifier_block(pb, W, C, n_aux > 0)
    V = rng.standard_normal((r + n_aux + 1, n_classes - 1))
    D = rng.standard_normal(V.shape)
    _, _, P = block.evaluate(V)
    eps = 1e-6
    numeric = (block.evaluate(V + eps * D)[1] - block.evaluate(V - eps * D)[1]) / (2 * eps)
    np.testing.assert_allclose(block.hessian_product(P, D), numeric, rtol=1e-5, atol=1e-6)
