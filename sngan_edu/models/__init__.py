"""Generators and discriminators of the course, one module per family.

``standard_cnn``: the paper's standard CNN (Miyato et al. 2018, Table 3); ``resnet``: its
ResNet; ``conditional``: the standard CNN's class-conditional G (conditional BN) and the
projection and concatenation discriminators D(x, y). Import the classes from their module, e.g.
``from sngan_edu.models.standard_cnn import Generator``, or pick a family by the name notebook 05
uses: ``FAMILIES["standard"].Generator``.
"""

from sngan_edu.models import conditional, resnet, standard_cnn

FAMILIES = {"standard": standard_cnn, "resnet": resnet}

__all__ = ["FAMILIES", "conditional", "resnet", "standard_cnn"]
