"""Tiny configurations and data of the four estimators, shared by the trainer tests."""

import numpy as np
from torch.utils.data import Dataset

from neural import ASTRSegmenter, DToPSegmenter, LocalLearningClassifier, P2CClassifier
from neural.datasets import make_shapes
from neural.segmentation import make_segmentation
from neural.text import make_preference_text
from neural.video import make_ultrasound_videos

NAMES = ["local", "dtop", "astr", "p2c"]


def make(name, **params):
    """A tiny estimator of each family (CPU, seeded)."""
    if name == "local":
        return LocalLearningClassifier(**{
            "method": "man", "n_local_modules": 2, "backbone": "resnet8", "width": 4,
            "batch_size": 32, "learning_rate_init": 0.01, "device": "cpu", "random_state": 0,
            **params})
    if name == "dtop":
        return DToPSegmenter(**{
            "p0": 0.7, "k": 1, "embed_dim": 16, "depth": 2, "num_heads": 2, "stage_ends": (1,),
            "finetune_iter": 0, "batch_size": 8, "learning_rate_init": 3e-3, "device": "cpu",
            "random_state": 0,
            **params})
    if name == "astr":
        return ASTRSegmenter(**{
            "n_frames": 2, "width": 4, "embed_dim": 16, "num_heads": 2, "batch_size": 8,
            "device": "cpu", "random_state": 0, **params})
    return P2CClassifier(**{
        "embedding_dim": 16, "pref_hidden": 16, "batch_size": 32, "sampling": "inconsistency",
        "device": "cpu", "random_state": 0, **params})


def data(name):
    """``(X, y, fit_params)`` for each family."""
    if name == "local":
        X, y = make_shapes(96, image_size=8, random_state=0)
        return X, y, {}
    if name == "dtop":
        X, M = make_segmentation(24, image_size=16, random_state=0)
        return X, M, {}
    if name == "astr":
        X, M, _ = make_ultrasound_videos(4, n_frames=3, image_size=16, random_state=0)
        return X, M, {}
    d = make_preference_text(120, 3, random_state=0)
    return d.texts, d.y, {"soft_labels": d.soft_labels}


class ArrayPairs(Dataset):
    """A user's map-style dataset over arrays: (x, y) items, one at a time."""

    def __init__(self, X, y):
        self.X, self.y = X, y

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return self.X[i], self.y[i]


def predictions(est, X):
    """A float array the fitted estimator outputs for ``X``."""
    out = est.predict_proba(X)
    return np.stack(out) if isinstance(out, list) else np.asarray(out)
