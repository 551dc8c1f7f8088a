"""Test-session set-up shared by the whole suite.

scikit-learn's array-API checks need ``SCIPY_ARRAY_API=1`` before SciPy is imported; setting
it here (the first project file pytest loads) lets the common checks exercise
array_api_strict and torch on CPU. It changes nothing for plain NumPy input.
"""

import os

os.environ.setdefault("SCIPY_ARRAY_API", "1")
