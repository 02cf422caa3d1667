"""Measure a deployed stack, check its output, tune its flags and feed the figures back."""
