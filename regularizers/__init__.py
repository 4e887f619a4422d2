"""Regularizers."""
