"""The P2C network: a sentence encoder, a classification head and label-conditioned preference heads."""

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["P2CNet", "PreferenceHead"]


class PreferenceHead(nn.Module):
    """Label-conditioned scalar score :math:`r(x, y) \\in [-1, 1]`.

    MLP over ``concat[h(x), onehot(y)]``: Linear-ReLU-Linear-ReLU-Linear-Tanh,
    as the reference code's reward heads (which concatenate a constant vector
    holding the label instead of a one-hot).

    Parameters
    ----------
    in_dim : int
        Feature dimension of ``h(x)``.
    n_classes : int
        Number of labels.
    hidden : int
        Hidden width.
    """

    def __init__(self, in_dim, n_classes, hidden):
        super().__init__()
        self.n_classes = n_classes
        self.mlp = nn.Sequential(
            nn.Linear(in_dim + n_classes, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, 1), nn.Tanh(),
        )

    def forward(self, h, y):
        """Score features for labels.

        Parameters
        ----------
        h : torch.Tensor of shape (n, d)
            Sentence features.
        y : torch.Tensor of shape (n,)
            Encoded labels.

        Returns
        -------
        scores : torch.Tensor of shape (n,)
            Scores in [-1, 1].
        """
        onehot = F.one_hot(y, self.n_classes).to(h.dtype)
        return self.mlp(torch.cat([h, onehot], dim=1)).squeeze(1)


class P2CNet(nn.Module):
    """Encoder + classification head + ``n_pref_heads`` preference heads.

    Parameters
    ----------
    encoder : torch.nn.Module or None
        Maps a batch of inputs to features (n, ``feature_dim``); None means the
        inputs already are features (a frozen pretrained encoder).
    feature_dim : int
        Dimension of the features.
    n_classes : int
        Number of labels.
    n_pref_heads : int, default=3
        Number of preference heads.
    hidden : int, default=32
        Hidden width of the preference heads.
    dropout : float, default=0.1
        Dropout before the classification head.
    """

    def __init__(self, encoder, feature_dim, n_classes, n_pref_heads=3, hidden=32, dropout=0.1):
        super().__init__()
        self.encoder = encoder if encoder is not None else nn.Identity()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(feature_dim, n_classes)
        self.pref_heads = nn.ModuleList(
            PreferenceHead(feature_dim, n_classes, hidden) for _ in range(n_pref_heads)
        )

    def encode(self, x):
        """Compute the sentence features of a batch.

        Parameters
        ----------
        x : torch.Tensor
            Token ids (n, L), or features (n, d) without an encoder.

        Returns
        -------
        h : torch.Tensor of shape (n, feature_dim)
            Features.
        """
        return self.encoder(x)

    def classify(self, h):
        """Compute class logits from features.

        Parameters
        ----------
        h : torch.Tensor of shape (n, feature_dim)
            Features.

        Returns
        -------
        logits : torch.Tensor of shape (n, n_classes)
            Logits.
        """
        return self.classifier(self.dropout(h))

    def preference_scores(self, h, y):
        """Score features with every preference head.

        Parameters
        ----------
        h : torch.Tensor of shape (n, feature_dim)
            Features.
        y : torch.Tensor of shape (n,)
            Encoded label each text is scored for.

        Returns
        -------
        scores : torch.Tensor of shape (n_pref_heads, n)
            Scores in [-1, 1].
        """
        if len(self.pref_heads) == 0:
            return h.new_zeros((0, h.shape[0]))
        return torch.stack([head(h, y) for head in self.pref_heads])

    def forward(self, x):
        """Classify a batch.

        Parameters
        ----------
        x : torch.Tensor
            Token ids (n, L), or features (n, d) without an encoder.

        Returns
        -------
        logits : torch.Tensor of shape (n, n_classes)
            Logits.
        """
        return self.classify(self.encode(x))
