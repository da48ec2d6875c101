"""Generators and discriminators of the course, one module per family.

``standard_cnn``: the paper's standard CNN (Miyato et al. 2018, Table 3).
Import the classes from their module, e.g. ``from sngan_edu.models.standard_cnn import Generator``.
"""
