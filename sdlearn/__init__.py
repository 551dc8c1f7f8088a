"""sdlearn: supervised dictionary learning with auxiliary covariates.

Estimators follow scikit-learn; the solvers are also available as functions for
convergence experiments.
"""

from ._bcd import bcd
from ._lpgd import lpgd
from ._problem import SDLResult
from ._sdl import SDLClassifier
from ._stream import fit_stream

__version__ = "0.1.0.dev0"

__all__ = ["SDLClassifier", "SDLResult", "bcd", "fit_stream", "lpgd", "__version__"]
