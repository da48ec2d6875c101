"""Metrics: toy mode coverage, classifier scores and FD, IS/FID for natural images."""
