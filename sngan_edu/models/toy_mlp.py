"""Small MLP generator and discriminator for the 2-D toy mixtures."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor, nn

from sngan_edu.checks import check_int, check_positive


def _check_sizes(input_name: str, input_size: int, hidden: Sequence[int]) -> None:
    check_int(input_name, input_size)
    for i, width in enumerate(hidden):
        check_int(f"hidden[{i}]", width)


def _mlp(sizes: Sequence[int], activation: Callable[[], nn.Module]) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(fan_in, fan_out))
        if i < len(sizes) - 2:
            layers.append(activation())
    return layers


class ToyGenerator(nn.Module):
    """z (z_dim) -> ReLU MLP -> a point in the plane.

    ``batchnorm=True`` puts BatchNorm before each ReLU, as in the PacGAN toy generator.
    """

    def __init__(
        self,
        z_dim: int = 2,
        hidden: Sequence[int] = (128, 128, 128),
        out_dim: int = 2,
        batchnorm: bool = False,
    ):
        super().__init__()
        _check_sizes("z_dim", z_dim, hidden)
        self.z_dim = z_dim
        layers: list[nn.Module] = []
        sizes = [z_dim, *hidden]
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
            layers.append(nn.Linear(fan_in, fan_out))
            if batchnorm:
                layers.append(nn.BatchNorm1d(fan_out))
            layers.append(nn.ReLU())
        layers.append(nn.Linear(sizes[-1], out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class ToyDiscriminator(nn.Module):
    """A point -> MLP -> one logit.

    ``input_scale`` multiplies the input before the first layer. With spectral normalization the
    MLP is (at most) 1-Lipschitz in its input, so the whole critic is ``input_scale``-Lipschitz
    in data units: the knob that lets it tell apart points 0.05 apart (see notebook 04).
    """

    def __init__(
        self,
        in_dim: int = 2,
        hidden: Sequence[int] = (128, 128, 128),
        input_scale: float = 1.0,
        negative_slope: float = 0.1,
    ):
        super().__init__()
        _check_sizes("in_dim", in_dim, hidden)
        check_positive("input_scale", input_scale)
        self.input_scale = float(input_scale)
        self.net = nn.Sequential(
            *_mlp([in_dim, *hidden, 1], lambda: nn.LeakyReLU(negative_slope))
        )

    def forward(self, x: Tensor) -> Tensor:
        if self.input_scale != 1.0:
            x = x * self.input_scale
        return self.net(x).squeeze(-1)
