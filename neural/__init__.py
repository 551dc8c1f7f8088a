"""neural: torch models behind scikit-learn's fit / predict interface.

Subpackages: :mod:`neural.backbones` (CIFAR ResNets written here),
:mod:`neural.local` (supervised local learning); modules
:mod:`neural.base` (the estimator base class), :mod:`neural.datasets`
(offline image data) and :mod:`neural.memory` (activation-memory
measurement).
"""

from .base import BaseTorchClassifier, BaseTorchEstimator
from .local import LocalLearningClassifier
from .memory import SavedTensorMemory

__all__ = [
    "BaseTorchClassifier",
    "BaseTorchEstimator",
    "LocalLearningClassifier",
    "SavedTensorMemory",
]
