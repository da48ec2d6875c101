"""Friendly checks for the classroom exercises in ``notebooks/exercises/``.

Each ``check_*`` function takes the student's function, calls it on small cases and compares what
it does with an independent reference (SVD, torch's own spectral norm, autograd, the course's
metrics). The checks test behaviour, not code, so any correct solution passes. On success they
print the list of checks passed; on failure they raise :class:`ExerciseFailed` whose message says
what was expected, what came back, and a hint that names the mistake when it is a known one. If
the student's function still raises ``NotImplementedError`` (the stub of a student copy), the
check raises ``NotImplementedError`` too, with a message that says which function is left to
write.

The checks cannot be fooled or hung by the function they check (see
:mod:`~sngan_edu.course.exercises.core` and :mod:`~sngan_edu.course.exercises.runner`): each
runs in a child process killed at its time limit; references come first, from copies; every
tensor handed over must come back unchanged; NaN or inf is a failed check; ``sys.exit`` is
caught; the caller's state is left as it was.

One or two modules per exercise notebook:

- :mod:`~sngan_edu.course.exercises.power_iteration` (01): power iteration, tracking sigma;
- :mod:`~sngan_edu.course.exercises.lipschitz` (02): gradient norms, the layer bound, the
  gradient penalty; :mod:`~sngan_edu.course.exercises.conv_operator` (02): a convolution's
  operator norm;
- :mod:`~sngan_edu.course.exercises.sn_layer` (03): SN forward pass, its gradient;
  :mod:`~sngan_edu.course.exercises.forgotten_layers` (03): the layers left without SN;
- :mod:`~sngan_edu.course.exercises.hinge_and_modes` (04): hinge losses, mode coverage;
  :mod:`~sngan_edu.course.exercises.ring_discriminator` (04): an SN discriminator for the ring;
- :mod:`~sngan_edu.course.exercises.discriminator_step` (05): one discriminator step;
  :mod:`~sngan_edu.course.exercises.generator_step` (05): one generator step with the average
  of G's weights;
- :mod:`~sngan_edu.course.exercises.projection` (07): the projection term of the projection
  discriminator, and its whole output.
"""

from sngan_edu.course.exercises.conv_operator import check_conv_operator_norm
from sngan_edu.course.exercises.core import TICK, ExerciseFailed
from sngan_edu.course.exercises.discriminator_step import check_discriminator_step
from sngan_edu.course.exercises.forgotten_layers import check_unnormalized_layers
from sngan_edu.course.exercises.generator_step import check_generator_step
from sngan_edu.course.exercises.hinge_and_modes import (
    check_hinge_d_loss,
    check_hinge_g_loss,
    check_mode_coverage,
    reference_mode_coverage,
)
from sngan_edu.course.exercises.lipschitz import (
    check_gradient_norms,
    check_gradient_penalty,
    check_lipschitz_bound,
)
from sngan_edu.course.exercises.power_iteration import check_power_iteration, check_track_sigma
from sngan_edu.course.exercises.projection import (
    check_projection_discriminator,
    check_projection_term,
)
from sngan_edu.course.exercises.ring_discriminator import check_sn_ring_discriminator
from sngan_edu.course.exercises.sn_layer import check_sn_forward, check_sn_gradient

__all__ = [
    "TICK",
    "ExerciseFailed",
    "check_power_iteration",
    "check_track_sigma",
    "check_gradient_norms",
    "check_lipschitz_bound",
    "check_gradient_penalty",
    "check_conv_operator_norm",
    "check_sn_forward",
    "check_sn_gradient",
    "check_unnormalized_layers",
    "check_hinge_d_loss",
    "check_hinge_g_loss",
    "check_mode_coverage",
    "check_sn_ring_discriminator",
    "check_discriminator_step",
    "check_generator_step",
    "check_projection_term",
    "check_projection_discriminator",
    "reference_mode_coverage",
]
