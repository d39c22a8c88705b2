"""Lets the example's tests import ecogen_ageing from this folder when ecogen's suite runs them
(pytest puts a conftest's folder on sys.path); a pip install of the example does the same."""
