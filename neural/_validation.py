"""Parameter constraints and input range checks shared by the neural estimators.

The estimators declare ``_parameter_constraints`` in scikit-learn's format and
validate them with ``BaseEstimator._validate_params`` (as the SDL core does).
scikit-learn's ``Interval`` rejects NaN but accepts infinity; :class:`Finite`
rejects both, so a NaN or infinite learning rate, threshold or weight is
refused with the parameter's name. The other constraints here cover what
scikit-learn's vocabulary lacks: tuples of numbers, optimizers, callbacks and
devices.
"""

import numbers

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, _Constraint, make_constraint

__all__ = [
    "InvalidParameterError",
    "validate_params",
    "Finite",
    "TupleOf",
    "OptimizerSpec",
    "CallbackList",
    "DeviceSpec",
    "resolve_optimizer",
    "check_float32_range",
    "FLOAT32_MAX",
]

FLOAT32_MAX = float(np.finfo(np.float32).max)


class InvalidParameterError(ValueError, TypeError):
    """A parameter value outside its constraints (a ValueError and a TypeError, as in scikit-learn)."""


def validate_params(estimator):
    """Check every parameter of ``estimator`` against its ``_parameter_constraints``.

    Each entry lists the constraints a value may satisfy: scikit-learn's
    vocabulary (types, ``Interval``, ``StrOptions``, ``"boolean"``,
    ``"random_state"``, ``None``, ...) and the constraints of this module.

    Parameters
    ----------
    estimator : BaseEstimator
        The estimator.

    Raises
    ------
    InvalidParameterError
        Naming the first parameter outside its constraints and what it must be.
    """
    constraints = type(estimator)._parameter_constraints
    for name, value in estimator.get_params(deep=False).items():
        if name not in constraints:
            continue
        options = [c if isinstance(c, _Constraint) else make_constraint(c)
                   for c in constraints[name]]
        if any(c.is_satisfied_by(value) for c in options):
            continue
        shown = [str(c) for c in options]
        what = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]
        raise InvalidParameterError(
            f"The {name!r} parameter of {type(estimator).__name__} must be {what}. "
            f"Got {value!r} instead."
        )


class Finite(Interval):
    """An :class:`~sklearn.utils._param_validation.Interval` of finite numbers only."""

    def __contains__(self, val):
        if isinstance(val, numbers.Real) and not np.isfinite(val):
            return False
        return super().__contains__(val)

    def __str__(self):
        return "a finite " + super().__str__().removeprefix("a ")


class TupleOf(_Constraint):
    """A tuple (or list) whose every element satisfies ``element``.

    Parameters
    ----------
    element : Interval or type
        Constraint of each element.
    lengths : tuple of int or None, default=None
        Allowed lengths (None: any, the empty tuple included).
    """

    def __init__(self, element, lengths=None):
        super().__init__()
        self.element = element
        self.lengths = lengths

    def _element_ok(self, value):
        if isinstance(value, bool):
            return False
        if isinstance(self.element, Interval):
            return self.element.is_satisfied_by(value)
        return isinstance(value, self.element)

    def is_satisfied_by(self, val):
        if not isinstance(val, (tuple, list)):
            return False
        if self.lengths is not None and len(val) not in self.lengths:
            return False
        return all(self._element_ok(v) for v in val)

    def __str__(self):
        what = self.element if isinstance(self.element, Interval) else self.element.__name__
        size = "" if self.lengths is None else f" of length {' or '.join(map(str, self.lengths))}"
        return f"a tuple{size} whose elements are {what}"


def _optimizer_classes():
    """The optimizers of :mod:`torch.optim`, by lower-case class name."""
    return {
        name.lower(): obj
        for name, obj in vars(torch.optim).items()
        if isinstance(obj, type) and issubclass(obj, torch.optim.Optimizer)
        and obj is not torch.optim.Optimizer
    }


# optimizers whose step needs a closure (several evaluations per step): not a minibatch loop
_NEEDS_CLOSURE = ("lbfgs",)


def resolve_optimizer(solver):
    """Return the optimizer class named by ``solver`` (a class or a case-insensitive name).

    Parameters
    ----------
    solver : str or type
        A subclass of :class:`torch.optim.Optimizer`, or the name of one in
        :mod:`torch.optim` (``"adam"``, ``"AdamW"``, ``"rmsprop"``, ...).

    Returns
    -------
    cls : type
        The optimizer class.

    Raises
    ------
    ValueError
        For an unknown name or an optimizer that needs a closure (L-BFGS).
    """
    if isinstance(solver, type) and issubclass(solver, torch.optim.Optimizer):
        cls = solver
    else:
        cls = _optimizer_classes().get(str(solver).lower())
        if cls is None:
            names = ", ".join(repr(n) for n in sorted(_optimizer_classes()) if n not in _NEEDS_CLOSURE)
            raise ValueError(f"solver={solver!r} is not an optimizer of torch.optim; use one of "
                             f"{names} or pass an optimizer class.")
    if cls.__name__.lower() in _NEEDS_CLOSURE:
        raise ValueError(f"solver={cls.__name__} needs a closure (several loss evaluations per step), "
                         "which the minibatch training loop does not provide; use another optimizer.")
    return cls


class OptimizerSpec(_Constraint):
    """A :mod:`torch.optim` optimizer class or its case-insensitive name."""

    def is_satisfied_by(self, val):
        if isinstance(val, type):
            return issubclass(val, torch.optim.Optimizer) and val.__name__.lower() not in _NEEDS_CLOSURE
        return isinstance(val, str) and val.lower() in _optimizer_classes() and (
            val.lower() not in _NEEDS_CLOSURE)

    def __str__(self):
        names = sorted(n for n in _optimizer_classes() if n not in _NEEDS_CLOSURE)
        return ("a torch.optim.Optimizer subclass or the name of one (case-insensitive): "
                + ", ".join(repr(n) for n in names))


class CallbackList(_Constraint):
    """A list or tuple of :class:`neural.callbacks.Callback` instances."""

    def is_satisfied_by(self, val):
        from .callbacks import Callback

        return isinstance(val, (list, tuple)) and all(isinstance(c, Callback) for c in val)

    def __str__(self):
        return "a list of neural.callbacks.Callback instances"


class DeviceSpec(_Constraint):
    """``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a :class:`torch.device`."""

    def is_satisfied_by(self, val):
        if isinstance(val, torch.device):
            return val.type in ("cpu", "cuda")
        if not isinstance(val, str):
            return False
        if val in ("auto", "cpu", "cuda"):
            return True
        return val.startswith("cuda:") and val[5:].isdigit()

    def __str__(self):
        return "'auto', 'cpu', 'cuda', 'cuda:N' or a torch.device"


def check_float32_range(a, name):
    """Raise a ``ValueError`` if finite values of ``a`` overflow float32.

    The models compute in float32: a float64 value beyond about 3.4e38 would
    become infinity and train to NaN.

    Parameters
    ----------
    a : ndarray
        Floating-point data (already checked for NaN and infinity).
    name : str
        Name used in the message.
    """
    a = np.asarray(a)
    if a.dtype.kind != "f" or a.dtype.itemsize <= 4 or a.size == 0:
        return
    peak = float(np.abs(a).max())
    if peak > FLOAT32_MAX:
        raise ValueError(
            f"{name} holds values up to {peak:.3g}, outside the float32 range (about "
            f"+-{FLOAT32_MAX:.3g}) the models compute in; rescale the data (for example with "
            "sklearn.preprocessing.StandardScaler)."
        )
