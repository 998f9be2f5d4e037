"""Compatibility module (being built)."""
