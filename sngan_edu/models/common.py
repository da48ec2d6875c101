"""What the image-model families share: argument checks, channel scaling by ``width`` and the
common start of the generators (sizes, latent code) and of the discriminators (sizes)."""

from __future__ import annotations

from torch import nn

from sngan_edu.checks import check_int, check_positive, is_int
from sngan_edu.models.latent import CategoryCode


def check_image_model(
    image_size: int, channels: int, width: float, z_dim: int | None = None
) -> None:
    """ValueError unless the sizes fit a standard-CNN or ResNet generator / discriminator.

    ``image_size`` must be a multiple of 8 (three 2x up- or down-samplings), ``channels`` and
    ``z_dim`` (generators only; ``None`` skips it) positive integers, ``width`` > 0.
    """
    if not is_int(image_size) or image_size < 8 or image_size % 8:
        raise ValueError(
            f"image_size must be a multiple of 8 (e.g. 16, 32, 48); got {image_size!r}"
        )
    check_int("channels", channels, note=" (1 or 3)")
    check_positive("width", width, "a positive number (1.0 = the paper)")
    if z_dim is not None:
        check_int("z_dim", z_dim)


def scaled(channels: int, width: float) -> int:
    """A channel count times ``width``, rounded, at least 1."""
    return max(1, round(channels * width))


class ImageGenerator(nn.Module):
    """The start both generator families share: checked sizes, the latent code, the bottom size.

    ``self.code`` turns the last ``z_categories`` entries of z into a one-hot code (0: none);
    ``self.bottom = image_size // 8`` is the side of the first feature map.
    """

    def __init__(
        self, z_dim: int, image_size: int, channels: int, width: float, z_categories: int
    ) -> None:
        super().__init__()
        check_image_model(image_size, channels, width, z_dim)
        self.z_dim, self.image_size, self.channels = z_dim, image_size, channels
        self.code = CategoryCode(z_categories, z_dim)
        self.bottom = image_size // 8


class ImageDiscriminator(nn.Module):
    """The start both discriminator families share: checked sizes, kept as attributes."""

    def __init__(self, image_size: int, channels: int, width: float) -> None:
        super().__init__()
        check_image_model(image_size, channels, width)
        self.image_size, self.channels = image_size, channels
