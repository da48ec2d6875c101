"""Facts about notebooks/exercises/04_hinge_and_modes.ipynb, evaluated in its kernel after nbval.

Section 4 trains two small SN-GANs; its printed digits depend on the CPU's float kernels, so the
cell's output is not compared and what the text says of it is asserted here.
"""


def _coverage(name):
    return mode_coverage(ring_samples[name], means, std)


def fact_the_unscaled_sn_gan_misses_the_ring():
    # "its generator finds none of them, or almost none"
    modes, percent = _coverage("SN, input unscaled")
    assert modes <= 2 and percent < 5, (modes, percent)


def fact_the_stretched_sn_gan_covers_the_whole_ring():
    # "the same SN-GAN covers the whole ring ... only part of them lie within 3s"
    modes, percent = _coverage("SN, your stretched input")
    assert modes == 8, modes
    assert 1 < percent < 100, percent

