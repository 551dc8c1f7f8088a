"""sdlearn: supervised dictionary learning with auxiliary covariates."""

__version__ = "0.1.0.dev0"
