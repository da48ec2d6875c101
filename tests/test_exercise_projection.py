"""Exercise 07's checks, both ways: the solution passes, and each wrong solution fails with the
hint that names its mistake."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F

from sngan_edu.course.exercises import (
    ExerciseFailed,
    check_projection_discriminator,
    check_projection_term,
)


def projection_term(phi, embed, y):
    return (embed(y) * phi).sum(dim=1)


def projection_term_einsum(phi, embed, y):  # another correct way
    return torch.einsum("nf,nf->n", embed.weight[y], phi)


def projection_term_loop(phi, embed, y):  # and a slow one
    return torch.stack([embed(y[i : i + 1])[0] @ phi[i] for i in range(len(y))])


WRONG_TERMS = {
    "no sum over features": (lambda phi, embed, y: embed(y) * phi, "did not add the products"),
    "mean over features": (lambda phi, embed, y: (embed(y) * phi).mean(1), "you averaged"),
    "sum over the batch": (lambda phi, embed, y: (embed(y) * phi).sum(), "whole batch"),
    "one-hot without embedding": (lambda phi, embed, y: phi[torch.arange(len(y)), y],
                                  "one-hot(y) in place of the learned embedding"),
    "one-hot of K classes": (lambda phi, embed, y: (F.one_hot(y, embed.num_embeddings).float()
                                                    * phi[:, : embed.num_embeddings]).sum(1),
                             "one-hot(y) in place of the learned embedding"),
    "every class": (lambda phi, embed, y: phi @ embed.weight.T, "against EVERY class"),
    "embedding on the wrong axis": (lambda phi, embed, y: (phi @ embed.weight.T).sum(1),
                                    "ALL the classes' rows"),
    "added twice": (lambda phi, embed, y: 2 * (embed(y) * phi).sum(1), "twice"),
    "keepdim": (lambda phi, embed, y: (embed(y) * phi).sum(1, keepdim=True), "broadcasts"),
    "phi detached": (lambda phi, embed, y: (embed(y) * phi.detach()).sum(1), "phi was detached"),
    "embedding detached": (lambda phi, embed, y: (embed.weight.detach()[y] * phi).sum(1),
                           "embedding was detached"),
    "raw weight, no SN": (lambda phi, embed, y: (
        getattr(getattr(embed, "parametrizations", None), "weight", embed).original[y]
        * phi).sum(1) if hasattr(embed, "parametrizations") else (embed(y) * phi).sum(1),
        "skips spectral normalization"),
}


@pytest.mark.parametrize("solution", [projection_term, projection_term_einsum,
                                      projection_term_loop])
def test_correct_projection_terms_pass(solution, capsys):
    check_projection_term(solution)
    assert "projection_term: all 3 checks passed" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(WRONG_TERMS))
def test_wrong_projection_terms_fail_with_their_hint(name):
    wrong, hint = WRONG_TERMS[name]
    with pytest.raises(ExerciseFailed, match=re.escape(hint)):
        check_projection_term(wrong)


def test_the_stub_is_not_implemented():
    def stub(phi, embed, y):
        raise NotImplementedError()

    with pytest.raises(NotImplementedError, match="not written yet"):
        check_projection_term(stub)


def projection_discriminator(D, x, y):
    phi = D.features(x)
    return D.linear(phi).squeeze(1) + projection_term(phi, D.embed, y)


WRONG_DS = {
    "label ignored": (lambda D, x, y: D.linear(D.features(x)).squeeze(1), "ignores the label"),
    "psi forgotten": (lambda D, x, y: projection_term(D.features(x), D.embed, y),
                      "only the projection term"),
    "projection added twice": (lambda D, x, y: D.linear(D.features(x)).squeeze(1)
                               + 2 * projection_term(D.features(x), D.embed, y),
                               "added twice"),
    "psi not squeezed": (lambda D, x, y: D.linear(D.features(x))
                         + projection_term(D.features(x), D.embed, y), "(6, 6) result"),
    "phi detached in the projection": (lambda D, x, y: D.linear(D.features(x)).squeeze(1)
                                       + projection_term(D.features(x).detach(), D.embed, y),
                                       "must stay attached"),
}


def test_the_solution_of_the_whole_output_passes(capsys):
    check_projection_discriminator(projection_discriminator)
    assert "projection_discriminator: all 2 checks passed" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(WRONG_DS))
def test_wrong_outputs_fail_with_their_hint(name):
    wrong, hint = WRONG_DS[name]
    with pytest.raises(ExerciseFailed, match=re.escape(hint)):
        check_projection_discriminator(wrong)


def test_a_d_left_in_training_mode_fails():
    def trains(D, x, y):
        D.train()
        return projection_discriminator(D, x, y)

    with pytest.raises(ExerciseFailed, match="D unchanged"):
        check_projection_discriminator(trains)


@pytest.mark.parametrize("check", [check_projection_term, check_projection_discriminator])
def test_a_result_instead_of_the_function_is_a_value_error(check):
    with pytest.raises(ValueError, match="pass your function itself"):
        check(1.0)


def test_a_stub_called_by_the_whole_output_is_named():
    def stub(phi, embed, y):
        raise NotImplementedError()

    def whole(D, x, y):
        phi = D.features(x)
        return D.linear(phi).squeeze(1) + stub(phi, D.embed, y)

    with pytest.raises(NotImplementedError, match="calls stub, which is not written yet"):
        check_projection_discriminator(whole)


def test_nan_exit_and_endless_loops_are_failed_checks(monkeypatch):
    import sys

    import sngan_edu.course.exercises.core as core

    with pytest.raises(ExerciseFailed, match="nan or inf"):
        check_projection_term(lambda phi, embed, y: (embed(y) * phi).sum(1) / 0)
    with pytest.raises(ExerciseFailed, match=re.escape("sys.exit()")):
        check_projection_term(lambda phi, embed, y: sys.exit(1))
    monkeypatch.setattr(core, "TIME_LIMIT_S", 1.0)

    def endless(phi, embed, y):
        while True:
            pass

    with pytest.raises(ExerciseFailed, match="time limit"):
        check_projection_term(endless)


def test_inputs_written_in_place_fail():
    def in_place(phi, embed, y):
        phi.mul_(embed(y))
        return phi.sum(1)

    with pytest.raises(ExerciseFailed, match="phi unchanged"):
        check_projection_term(in_place)
