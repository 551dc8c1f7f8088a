"""neural: torch models behind scikit-learn's fit / predict interface."""
