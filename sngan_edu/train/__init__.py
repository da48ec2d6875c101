"""Training: the validated run configuration, the one training loop, callbacks, checkpoints."""
