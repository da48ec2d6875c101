"""Class labels for a conditional run, passed through the unchanged loop of :mod:`~.loop`.

:func:`~sngan_edu.train.loop.train_gan` calls ``G(z)`` and ``D(x)``. A conditional run gives it
G and D bound to labels (:class:`~sngan_edu.models.conditional.BoundLabels`) and samplers that
set those labels as they draw: each real batch comes with its labels, and each noise batch with
labels drawn uniformly from the classes, which G is asked to draw. The loop draws a real batch
and then a noise batch for each D step (D scores both in one forward: the real labels followed
by the fake ones), and a noise batch alone for the G step (D scores G's samples with G's labels):

    binding = LabelBinding(G, D, num_classes=10)
    real = binding.real(images, labels)      # in sample_real: D's next labels start with these
    binding.fake(len(z), generator)          # in sample_z, after z: G's labels, D's next ones
    train_gan(binding.G, binding.D, ...)

So one forward of D per D step is required (no separate real and fake calls, no gradient
penalty on interpolates: :class:`~sngan_edu.train.config.RunConfig` refuses those).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sngan_edu.models.conditional import BoundLabels


class LabelBinding:
    """G and D bound to the labels of the batches the samplers draw (see the module)."""

    def __init__(self, G: nn.Module, D: nn.Module, num_classes: int,
                 device: torch.device | str = "cpu") -> None:
        self.G, self.D = BoundLabels(G), BoundLabels(D)
        self.num_classes, self.device = num_classes, torch.device(device)
        self._real: Tensor | None = None  # the last real batch's labels, until G's are drawn

    def real(self, images: Tensor, labels: Tensor, rows: slice | None = None) -> Tensor:
        """``images[rows]``, after noting ``labels[rows]`` (on the device) as the first part of
        D's next labels (``rows``: this process's share of a global batch; None: all)."""
        if rows is not None:
            images, labels = images[rows], labels[rows]
        self._real = labels.to(self.device)
        return images

    def fake(self, n: int, generator: torch.Generator | None = None,
             rows: slice | None = None) -> Tensor:
        """Draw ``n`` uniform labels from ``generator`` and bind ``labels[rows]`` to G; D's
        next labels are the noted real ones followed by these, or these alone. Returns them."""
        labels = torch.randint(self.num_classes, (n,), generator=generator,
                               device=self.device)
        labels = labels if rows is None else labels[rows]
        self.G.labels = labels
        self.D.labels = labels if self._real is None else torch.cat((self._real, labels))
        self._real = None
        return labels


def cycle_labels(n: int, num_classes: int, device: torch.device | str = "cpu") -> Tensor:
    """``0, 1, ..., num_classes - 1, 0, 1, ...``: ``n`` labels, each class in turn."""
    return torch.arange(n, device=device) % num_classes


__all__ = ["LabelBinding", "cycle_labels"]
