"""Experiments: the studies the notebooks show, as plain functions (tests call them directly)."""
