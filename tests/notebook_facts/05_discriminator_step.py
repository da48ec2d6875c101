"""Facts about notebooks/exercises/05_discriminator_step.ipynb, evaluated in its kernel after nbval.

The cell that trains D for 40 steps prints digits that depend on the CPU's float kernels; its
output is not compared, and what the text says of it is asserted here.
"""


def fact_d_wins_against_a_fixed_generator_within_a_few_dozen_steps():
    # "its loss falls towards 0 once real scores pass +1 and fake scores fall below -1"
    assert len(losses) == n_steps == 40
    assert 1.5 < losses[0] <= 2.5, losses[0]
    assert losses[-1] < 0.5, losses[-1]


def fact_normalized_weights_have_sigma_close_to_but_not_below_one():
    # "close to 1, but not exactly: ... the normalized weight comes out above 1 for a while"
    values = list(sigmas.values())
    assert len(values) == 8
    assert min(values) > 0.999, values
    assert max(values) < 1.3, values
