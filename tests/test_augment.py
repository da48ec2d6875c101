"""Random translation of D's inputs (DiffAugment), against a per-pixel reference."""

import pytest
import torch

from sngan_edu.data.augment import random_translate


def reference_shift(image, dy, dx):
    """``image`` (C, H, W) moved so that output (i, j) shows input (i + dy, j + dx), borders
    repeated: written pixel by pixel with clamped indices, independently of the library."""
    _, h, w = image.shape
    out = torch.empty_like(image)
    for i in range(h):
        for j in range(w):
            out[:, i, j] = image[:, min(max(i + dy, 0), h - 1), min(max(j + dx, 0), w - 1)]
    return out


def unique_images(n, c=2, h=7, w=9):
    return torch.arange(n * c * h * w, dtype=torch.float64).view(n, c, h, w)


@pytest.mark.parametrize("max_shift", [1, 2])
def test_every_image_is_a_shift_of_itself_within_range(max_shift):
    x = unique_images(200)
    out = random_translate(x, max_shift, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    seen = set()
    for image, shifted in zip(x, out, strict=True):
        # pixel values are unique, so the centre pixel says where it came from
        source = (image[0] == shifted[0, 3, 4]).nonzero()[0].tolist()
        dy, dx = source[0] - 3, source[1] - 4
        assert abs(dy) <= max_shift and abs(dx) <= max_shift
        torch.testing.assert_close(shifted, reference_shift(image, dy, dx), rtol=0, atol=0)
        seen.add((dy, dx))
    assert len(seen) == (2 * max_shift + 1) ** 2  # every shift occurs, (0, 0) included


def test_zero_shift_is_the_identity_and_the_generator_makes_it_reproducible():
    x = unique_images(8)
    assert random_translate(x, 0) is x
    a = random_translate(x, 1, torch.Generator().manual_seed(5))
    b = random_translate(x, 1, torch.Generator().manual_seed(5))
    c = random_translate(x, 1, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_gradients_flow_back_to_the_input():
    x = torch.randn(3, 1, 5, 5, dtype=torch.float64, requires_grad=True)

    def shifted(inp):  # the same shifts on every call, as gradcheck needs
        return random_translate(inp, 1, torch.Generator().manual_seed(1))

    assert torch.autograd.gradcheck(shifted, (x,))
    # each output pixel reads exactly one input pixel: the gradient of the sum counts the reads
    shifted(x).sum().backward()
    assert x.grad.sum().item() == pytest.approx(3 * 25)


@pytest.mark.parametrize(
    ("x", "max_shift", "match"),
    [
        (torch.zeros(2, 1, 8, 8), -1, "max_shift must be a non-negative integer"),
        (torch.zeros(2, 1, 8, 8), 1.5, "max_shift must be a non-negative integer"),
        (torch.zeros(2, 1, 8, 8), 4, "below half the image side"),
        (torch.zeros(1, 8, 8), 1, r"\(N, C, H, W\)"),
    ],
)
def test_bad_input_is_rejected(x, max_shift, match):
    with pytest.raises(ValueError, match=match):
        random_translate(x, max_shift)
