"""sngan_edu: the library behind the sngan-edu course on spectral normalization for GANs."""

__version__ = "0.1.0"
