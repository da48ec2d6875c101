"""Checks of exercise 07: the projection term of the projection discriminator (7.1) and the
whole output ``D(x, y) = psi(phi(x)) + embed(y)^T phi(x)`` (7.2), compared with
:class:`sngan_edu.models.conditional.ProjectionDiscriminator`."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sngan_edu.course.exercises.core import (
    _fmt,
    exercise_check,
    new_checker,
    require_unchanged,
    seeded,
    snapshot,
    tensor_close,
)
from sngan_edu.models.conditional import ProjectionDiscriminator
from sngan_edu.sn import spectral_norm

_Wrong = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

#: Plausible wrong projection terms f(phi, W, y), W the (classes x features) embedding matrix
#: the layer applies, each with the hint that names the mistake.
_WRONG_TERMS: tuple[tuple[_Wrong, str], ...] = (
    (lambda phi, W, y: W[y] * phi,
     "you multiplied embed(y) and phi(x) entry by entry but did not add the products up: the "
     "inner product is the SUM over the features, one number per sample: (embed(y) * phi)"
     ".sum(dim=1)."),
    (lambda phi, W, y: (W[y] * phi).mean(1),
     "you averaged over the features; the inner product SUMS them: .sum(dim=1)."),
    (lambda phi, W, y: (W[y] * phi).sum(),
     "you summed over the whole batch too: sum over the features only (dim=1), so that each "
     "sample gets its own score."),
    (lambda phi, W, y: phi @ W.T,
     "you scored every sample against EVERY class (phi @ W^T, one column per class): keep "
     "only the column of each sample's own label, i.e. use the row embed(y) of its class."),
    (lambda phi, W, y: (phi @ W.T).sum(1),
     "you summed the inner products with ALL the classes' rows: the projection uses only the "
     "row of the sample's own label, embed(y)."),
    (lambda phi, W, y: phi[torch.arange(len(y)), y],
     "you used one-hot(y) in place of the learned embedding: one_hot(y) . phi(x) just picks "
     "feature number y. The class direction is learned: use embed(y), the row y of the "
     "embedding matrix (the layer itself: embed(y))."),
    (lambda phi, W, y: (F.one_hot(y, W.shape[0]).to(phi.dtype) * phi[:, : W.shape[0]]).sum(1),
     "you used one-hot(y) in place of the learned embedding: the class direction is learned, "
     "use embed(y)."),
    (lambda phi, W, y: 2 * (W[y] * phi).sum(1),
     "your term is twice the projection: it is added once, embed(y) . phi(x)."),
    (lambda phi, W, y: -(W[y] * phi).sum(1),
     "the sign is flipped: the projection is + embed(y) . phi(x)."),
)


def reference_projection(phi: torch.Tensor, embed: nn.Module, y: torch.Tensor) -> torch.Tensor:
    """``embed(y)^T phi`` per sample, as a loop of dot products (the check's reference)."""
    W = embed.weight
    return torch.stack([torch.dot(W[y[i]], phi[i]) for i in range(len(y))])


def _match_wrong(out: Any, phi: torch.Tensor, W: torch.Tensor, y: torch.Tensor,
                 extra: tuple[tuple[_Wrong, str], ...] = ()) -> str | None:
    for wrong, hint in (*_WRONG_TERMS, *extra):
        try:
            value = wrong(phi.detach(), W.detach(), y)
        except (IndexError, RuntimeError):
            continue
        if tensor_close(out, value):
            return hint
    return None


def _embedding(classes: int, features: int, g: torch.Generator, sn: bool) -> nn.Embedding:
    embed = nn.Embedding(classes, features)
    with torch.no_grad():
        embed.weight.copy_(torch.randn(classes, features, generator=g))
    if sn:
        spectral_norm(embed)
        with torch.no_grad():
            for _ in range(30):  # converge the power iteration, then freeze it (eval mode)
                embed.weight  # noqa: B018 - reading the weight in training mode runs one
        embed.eval()
    return embed


def _require_scores(c, out: Any, n: int, expected: torch.Tensor, hint: str) -> None:
    if isinstance(out, torch.Tensor) and out.shape == (n, 1):
        c.fail(f"a tensor of shape ({n},)", f"shape {tuple(out.shape)}",
               "return one number per sample, shape (N,), like D's other term: a (N, 1) "
               "column added to a (N,) vector broadcasts into an (N, N) matrix. Sum with "
               "dim=1 and no keepdim (or .squeeze(1)).")
    if not tensor_close(out, expected):
        c.fail(_fmt(expected), _fmt(out), hint)


def _check_projection_gradients(c, embed: nn.Embedding, phi: torch.Tensor,
                                y: torch.Tensor) -> None:
    """Gradients reach phi and the embedding rows of the labels in ``y``, and only those."""
    phi_in = phi.clone().requires_grad_(True)
    out = c.call(phi_in, embed, y.clone())
    if not isinstance(out, torch.Tensor) or out.grad_fn is None:
        c.fail("a result that autograd can differentiate", "no gradient path",
               "compute the term with torch operations on phi and embed(y), without "
               ".detach(), .item(), numpy or torch.no_grad(): D learns through it.")
    grads = torch.autograd.grad(out.sum(), (phi_in, embed.weight), allow_unused=True)
    if grads[0] is None:
        c.fail("a gradient for phi", "none: phi was detached",
               "do not detach phi(x): the projection term must train D's features as well "
               "as the class embedding (and pass G's gradient through to the image).")
    if grads[1] is None or grads[1].abs().sum() == 0:
        c.fail("a gradient for the embedding", "none: the embedding was detached",
               "use embed(y) itself (not embed.weight.detach() or .data): D must learn each "
               "class's direction.")
    if not tensor_close(grads[0], embed.weight.detach()[y], atol=1e-5):
        c.fail("d(term)/d(phi_i) = embed(y_i)", _fmt(grads[0]),
               "each sample's score depends on its features only through embed(y_i).")
    unused = sorted(set(range(embed.num_embeddings)) - set(y.tolist()))
    if grads[1][unused].abs().sum() > 0:
        c.fail("no gradient for the rows of classes not in the batch",
               f"gradients on rows {unused}",
               "only the rows of the labels in the batch enter the term: index the rows with "
               "y (embed(y)), do not sum over all classes.")


@exercise_check
def check_projection_term(projection_term: Callable[..., Any]) -> None:
    """Check ``projection_term(phi, embed, y) -> (N,)``: ``embed(y)^T phi`` per sample.

    ``phi`` (N, F) are D's features, ``embed`` an ``nn.Embedding(K, F)`` (with spectral norm in
    the later checks), ``y`` (N,) the labels. Compared with a loop of dot products; gradients
    must reach phi and the embedding rows of the labels used, and only those.
    """
    c = new_checker("projection_term", projection_term)
    g = seeded(41)

    with c.step("a batch of 4 with 6 features and 3 classes: one score embed(y) . phi(x) each"):
        embed = _embedding(3, 6, g, sn=False)
        phi, y = torch.randn(4, 6, generator=g), torch.tensor([0, 2, 1, 2])
        with torch.no_grad():
            expected = reference_projection(phi, embed, y)
        out = c.call(phi.clone(), embed, y.clone())
        hint = _match_wrong(out, phi, embed.weight, y) or (
            "for each sample i: the dot product of embed(y_i), the row of its class, with phi_i: "
            "(embed(y) * phi).sum(dim=1).")
        _require_scores(c, out, 4, expected, hint)

    with c.step("10 classes and 12 features, the embedding spectrally normalized as in SN-GAN's D"):
        embed = _embedding(10, 12, g, sn=True)
        phi, y = torch.randn(7, 12, generator=g), torch.tensor([9, 0, 3, 3, 7, 1, 5])
        with torch.no_grad():
            expected = reference_projection(phi, embed, y)
            original = embed.parametrizations.weight.original.detach().clone()
        before = snapshot(embed)
        out = c.call(phi.clone(), embed, y.clone())
        raw = ((lambda p, W, lab: (original[lab] * p).sum(1),
                "you used the embedding's raw weight (parametrizations.weight.original), which "
                "skips spectral normalization: call the layer, embed(y), or read embed.weight, "
                "which is the normalized matrix."),)
        hint = _match_wrong(out, phi, embed.weight, y, raw) or (
            "(embed(y) * phi).sum(dim=1), with embed(y) the layer's output (its weight divided "
            "by sigma).")
        _require_scores(c, out, 7, expected, hint)
        require_unchanged(c, before, embed, "embed", "the projection only reads the embedding: "
                          "do not change its weight or its mode.")

    with c.step("gradients reach phi(x) (D's features) and the embedding rows of the labels used"):
        _check_projection_gradients(c, _embedding(10, 12, g, sn=False), phi, y)
    c.done()


def _small_d(g: torch.Generator) -> ProjectionDiscriminator:
    torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=g)))
    D = ProjectionDiscriminator(num_classes=10, image_size=16, channels=1, width=0.25,
                                spectral_norm=True)
    with torch.no_grad():
        D.embed.parametrizations.weight.original.normal_(0, 1, generator=g)
        x = torch.randn(16, 1, 16, 16, generator=g)
        for _ in range(20):  # converge the power iterations, then freeze them
            D(x, torch.arange(16) % 10)
    return D.eval()


@exercise_check
def check_projection_discriminator(projection_discriminator: Callable[..., Any]) -> None:
    """Check ``projection_discriminator(D, x, y) -> (N,)``: ``psi(phi(x)) + embed(y)^T phi(x)``
    with D's parts ``D.features`` (phi), ``D.linear`` (psi) and ``D.embed``.

    Compared with :class:`ProjectionDiscriminator`'s own forward on a spectrally normalized D
    in eval mode: same scores, same gradient with respect to the images, D unchanged.
    """
    c = new_checker("projection_discriminator", projection_discriminator)
    g = seeded(43)
    D = _small_d(g)
    x = torch.rand(6, 1, 16, 16, generator=g) * 2 - 1
    y = torch.tensor([7, 0, 7, 3, 9, 1])
    with torch.no_grad():
        expected = D(x, y)
        phi = D.features(x)
        psi = D.linear(phi).squeeze(1)
        proj = (D.embed(y) * phi).sum(1)
    before = snapshot(D)

    with c.step("scores 6 digits as D(x, y) = psi(phi(x)) + embed(y) . phi(x)"):
        out = c.call(D, x.clone(), y.clone())
        candidates = (
            (psi, "only psi(phi(x)): the score ignores the label. Add the projection term "
                  "embed(y) . phi(x) (your projection_term)."),
            (proj, "only the projection term: add psi(phi(x)) = D.linear(phi).squeeze(1), the "
                   "unconditional part of the score."),
            (psi + 2 * proj, "the projection term is added twice: once is enough."),
            (2 * psi + proj, "psi(phi(x)) is added twice: once is enough."),
            (psi - proj, "the projection is subtracted: it is added, + embed(y) . phi(x)."),
        )
        hint = next((h for value, h in candidates if tensor_close(out, value)), None)
        if hint is None and isinstance(out, torch.Tensor) and out.shape == (6, 6):
            hint = ("a (6, 6) result: a (N, 1) column was added to a (N,) vector. Squeeze psi's "
                    "output, D.linear(phi).squeeze(1), before adding the projection.")
        _require_scores(c, out, 6, expected, hint or "phi = D.features(x); return "
                        "D.linear(phi).squeeze(1) + projection_term(phi, D.embed, y).")
        require_unchanged(c, before, D, "D", "only read D's layers: no training, no change of "
                          "mode.")

    with c.step("the gradient with respect to the images is D's own (nothing detached)"):
        reference_x = x.clone().requires_grad_(True)
        (expected_grad,) = torch.autograd.grad(copy.deepcopy(D)(reference_x, y).sum(), reference_x)
        student_x = x.clone().requires_grad_(True)
        out = c.call(D, student_x, y.clone())
        if not isinstance(out, torch.Tensor) or out.grad_fn is None:
            c.fail("scores autograd can differentiate", "no gradient path",
                   "do not detach phi(x) or the scores: G learns through D's gradient.")
        (grad,) = torch.autograd.grad(out.sum(), student_x, allow_unused=True)
        if grad is None or not tensor_close(grad, expected_grad, rtol=1e-3, atol=1e-6):
            c.fail("D's gradient with respect to x", "a different gradient" if grad is not None
                   else "none", "phi(x) must stay attached in both terms: no .detach() on the "
                                "features the projection uses.")
    c.done()


__all__ = ["check_projection_discriminator", "check_projection_term", "reference_projection"]
