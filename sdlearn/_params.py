"""Parameter constraints shared by the solver functions and the estimator (one definition,
checked by scikit-learn's ``validate_params`` / ``_validate_params``)."""

from numbers import Integral, Real

from sklearn.utils._param_validation import Interval, StrOptions

from ._problem import SDLResult

#: what every solver and the estimator accept
COMMON = {
    "mode": [StrOptions({"filter", "feature"})],
    "xi": [Interval(Real, 0, None, closed="neither")],
    "alpha": [Interval(Real, 0, None, closed="left")],
    "max_iter": [Interval(Integral, 0, None, closed="left")],
    "tol": [Interval(Real, 0, None, closed="left")],
    # a step a million times the safe one is never useful, and far longer ones overflow
    "step_size": [StrOptions({"auto"}), Interval(Real, 0, 1e6, closed="right")],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
    "callback": [callable, None],
}

#: LPGD's own options
LPGD = {
    "projection": [StrOptions({"auto", "gram", "subspace"})],
    "acceleration": ["boolean"],
    "classifier_steps": [Interval(Integral, 0, None, closed="left")],
}

#: BCD's own options
BCD = {
    "nonnegative": ["boolean"],
    "block_max_iter": [Interval(Integral, 1, None, closed="left")],
    "radius": [Interval(Real, 0, None, closed="neither"), None],
    "radius_decay": [Interval(Real, 0, None, closed="left")],
}

#: the data arguments of the solver functions
DATA = {
    "X": ["array-like", "sparse matrix"],
    "y": ["array-like"],
    "n_components": [Interval(Integral, 1, None, closed="left")],
    "X_aux": ["array-like", "sparse matrix", None],
    "sample_weight": ["array-like", None],
}

#: LPGD starts from nothing, at random, or from a previous result (a warm start)
INIT_LPGD = [None, StrOptions({"random"}), SDLResult]

#: BCD also starts from a given dictionary, of shape (n_components, n_features)
INIT_BCD = INIT_LPGD + ["array-like"]
