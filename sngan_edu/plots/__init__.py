"""Matplotlib figures of the course, one module per topic; plain functions tests can call."""
