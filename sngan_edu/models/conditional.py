"""Class-conditional versions of the paper's standard CNN (its ImageNet setup, in small).

G draws the class it is asked for through conditional batch normalization (de Vries et al. 2017;
Miyato and Koyama 2018): each BN layer normalizes without an affine map of its own and then
applies a per-class gain and bias, ``BN(h) * gamma[y] + beta[y]``, with gamma starting at 1 and
beta at 0, so at initialization G is the unconditional one.

The projection discriminator (Miyato and Koyama, "cGANs with Projection Discriminator",
ICLR 2018) scores an image x with label y as

    D(x, y) = psi(phi(x)) + embed(y)^T phi(x),

where phi(x) is the standard CNN's feature vector (the input of its dense layer), psi that dense
layer and ``embed`` a learned (num_classes x features) matrix whose row y is the class's
direction in feature space. Spectral normalization is applied to every layer of D, the class
embedding included, as in the authors' code (pfnet-research/sngan_projection, ``SNEmbedID``).

:class:`ConcatDiscriminator` is the older cGAN for comparison: the label, one-hot, is appended to
D's input as ``num_classes`` constant planes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sngan_edu.checks import check_int
from sngan_edu.models.common import ImageGenerator, scaled
from sngan_edu.models.standard_cnn import G_CHANNELS, Discriminator, init_weights
from sngan_edu.sn import apply_spectral_norm

NUM_CLASSES = 10


def check_labels(y: object, num_classes: int, batch: int, name: str = "y") -> Tensor:
    """``y`` if it is an integer tensor of shape ``(batch,)`` with values in [0, num_classes)."""
    if not isinstance(y, Tensor) or y.dtype in (torch.bool, *_FLOAT_TYPES) or y.is_complex():
        kind = y.dtype if isinstance(y, Tensor) else type(y).__name__
        raise ValueError(f"{name} must be an integer tensor of class labels (torch.long); "
                         f"got {kind}")
    if y.shape != (batch,):
        raise ValueError(f"{name} must have shape ({batch},), one label per sample; "
                         f"got {tuple(y.shape)}")
    if batch and not y.is_meta and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(f"{name} must hold labels in [0, {num_classes - 1}]; got values from "
                         f"{int(y.min())} to {int(y.max())}")
    return y.long()


_FLOAT_TYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


class ConditionalBatchNorm(nn.Module):
    """``BN(h) * gain[y] + bias[y]``: batch normalization with a per-class affine map.

    ``dims`` is 1 for (N, C) inputs and 2 for (N, C, H, W). The gains start at 1 and the biases
    at 0, so at initialization it equals ``nn.BatchNorm{dims}d(num_features)``.
    """

    def __init__(self, num_features: int, num_classes: int, dims: int = 2) -> None:
        super().__init__()
        bn = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}[dims]
        self.bn = bn(num_features, affine=False)
        self.gain = nn.Embedding(num_classes, num_features)
        self.bias = nn.Embedding(num_classes, num_features)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, h: Tensor, y: Tensor) -> Tensor:
        shape = (h.shape[0], h.shape[1]) + (1,) * (h.dim() - 2)
        return self.bn(h) * self.gain(y).view(shape) + self.bias(y).view(shape)


class ConditionalGenerator(ImageGenerator):
    """The standard CNN generator with conditional BN: ``G(z, y)`` draws class ``y``.

    Same layers as :class:`sngan_edu.models.standard_cnn.Generator`, each BN replaced by a
    :class:`ConditionalBatchNorm`; ``width`` multiplies every channel count.
    """

    def __init__(self, num_classes: int = NUM_CLASSES, z_dim: int = 128, image_size: int = 32,
                 channels: int = 3, width: float = 1.0) -> None:
        super().__init__(z_dim, image_size, channels, width, 0)
        self.num_classes = check_int("num_classes", num_classes, 2)
        c = [scaled(ch, width) for ch in G_CHANNELS]
        n_flat = self.bottom * self.bottom * c[0]
        self.linear = nn.Linear(z_dim, n_flat)
        self.norms = nn.ModuleList([ConditionalBatchNorm(n_flat, num_classes, dims=1)])
        self.deconvs = nn.ModuleList()
        for c_in, c_out in zip(c[:-1], c[1:], strict=True):
            self.deconvs.append(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1))
            self.norms.append(ConditionalBatchNorm(c_out, num_classes))
        self.out = nn.Conv2d(c[-1], channels, 3, 1, 1)
        self._c0 = c[0]
        init_weights(self)  # convs and dense layers; the class gains stay 1, the biases 0

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        y = check_labels(y, self.num_classes, z.shape[0])
        h = F.relu(self.norms[0](self.linear(z), y))
        h = h.view(z.shape[0], self._c0, self.bottom, self.bottom)
        for deconv, norm in zip(self.deconvs, self.norms[1:], strict=True):
            h = F.relu(norm(deconv(h), y))
        return torch.tanh(self.out(h))

    def sample_z(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` latent vectors from N(0, I) on this model's device."""
        return torch.randn(n, self.z_dim, generator=generator, device=self.linear.weight.device)


class ProjectionDiscriminator(Discriminator):
    """``D(x, y) = psi(phi(x)) + embed(y)^T phi(x)`` on the standard CNN (returns (N,) logits).

    phi is the standard CNN's convolutions, flattened (``self.main``); psi its dense layer
    (``self.linear``); ``self.embed`` an ``nn.Embedding(num_classes, features)``. With
    ``spectral_norm=True`` every conv, the dense layer and the embedding are normalized.
    """

    def __init__(self, num_classes: int = NUM_CLASSES, image_size: int = 32, channels: int = 3,
                 width: float = 1.0, spectral_norm: bool = False,
                 n_power_iterations: int = 1) -> None:
        super().__init__(image_size, channels, width, spectral_norm, n_power_iterations)
        self.num_classes = check_int("num_classes", num_classes, 2)
        self.embed = nn.Embedding(num_classes, self.linear.in_features)
        nn.init.normal_(self.embed.weight, 0.0, 0.02)
        if spectral_norm:
            apply_spectral_norm(self, n_power_iterations=n_power_iterations)  # the embedding

    def features(self, x: Tensor) -> Tensor:
        """phi(x): the (N, features) input of the dense layer."""
        return self.main(x).flatten(1)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        y = check_labels(y, self.num_classes, x.shape[0])
        h = self.features(x)
        return self.linear(h).squeeze(1) + (self.embed(y) * h).sum(1)


class ConcatDiscriminator(Discriminator):
    """The older cGAN: the standard CNN D on the image with the one-hot label appended as
    ``num_classes`` constant input planes, ``D([x, onehot(y)])``."""

    def __init__(self, num_classes: int = NUM_CLASSES, image_size: int = 32, channels: int = 3,
                 width: float = 1.0, spectral_norm: bool = False,
                 n_power_iterations: int = 1) -> None:
        check_int("channels", channels, note=" (1 or 3)")
        self.num_classes = check_int("num_classes", num_classes, 2)
        super().__init__(image_size, channels + num_classes, width, spectral_norm,
                         n_power_iterations)
        self.channels = channels

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        y = check_labels(y, self.num_classes, x.shape[0])
        planes = F.one_hot(y, self.num_classes).to(x.dtype)[:, :, None, None]
        return super().forward(torch.cat([x, planes.expand(-1, -1, *x.shape[2:])], 1))


class BoundLabels(nn.Module):
    """A conditional network seen as an unconditional one: ``forward(x) = net(x, self.labels)``.

    The course's step functions (:mod:`sngan_edu.gan_step`) call ``D(x)`` and ``G(z)``; set
    ``labels`` to the batch's labels before each call (for D's joint real+fake forward, the
    real labels followed by the fake ones).
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.labels: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        if self.labels is None:
            raise ValueError("labels must be set before calling a BoundLabels network")
        return self.net(x, self.labels)


__all__ = ["BoundLabels", "ConcatDiscriminator", "ConditionalBatchNorm", "ConditionalGenerator",
           "ProjectionDiscriminator", "check_labels"]
