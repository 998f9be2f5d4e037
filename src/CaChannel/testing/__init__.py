"""Test support: run a real IOC for Channel Access tests (being built)."""
