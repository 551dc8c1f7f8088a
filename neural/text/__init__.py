"""Text classification with auxiliary pairwise preference learning (P2C).

:class:`P2CClassifier` trains a sentence encoder (an embedding bag or a tiny
transformer, or frozen embeddings of a locally installed pretrained sentence
encoder) with a classification head and label-conditioned preference heads.
Preferences come from annotator soft labels, explicit pairs, or a scoring
function. :mod:`neural.text._data` provides offline data: a synthetic text
generator with a latent intensity and disagreeing annotators, simulated
preferences, and CSV/JSONL loaders.
"""

from ._classifier import P2CClassifier, check_texts
from ._data import (
    CueWordScorer,
    load_text_csv,
    load_text_jsonl,
    make_preference_text,
    simulate_preferences,
    soft_labels_from_annotations,
)
from ._encoders import BagEncoder, SentenceEncoder, TransformerTextEncoder
from ._losses import consistency_loss, diversity_loss, preference_loss, soft_label_margin_loss
from ._model import P2CNet, PreferenceHead
from ._preferences import (
    check_preference_pairs,
    check_soft_labels,
    preferences_from_soft_labels,
    query_preferences,
)
from ._reference import reference_params
from ._sampling import (
    disagreement_partners,
    head_disagreement,
    inconsistency_partners,
    random_partners,
)
from ._tokenize import Tokenizer

__all__ = [
    "BagEncoder",
    "CueWordScorer",
    "P2CClassifier",
    "P2CNet",
    "PreferenceHead",
    "SentenceEncoder",
    "Tokenizer",
    "TransformerTextEncoder",
    "check_preference_pairs",
    "check_soft_labels",
    "check_texts",
    "consistency_loss",
    "disagreement_partners",
    "diversity_loss",
    "head_disagreement",
    "inconsistency_partners",
    "load_text_csv",
    "load_text_jsonl",
    "make_preference_text",
    "preference_loss",
    "preferences_from_soft_labels",
    "query_preferences",
    "random_partners",
    "reference_params",
    "simulate_preferences",
    "soft_label_margin_loss",
]
