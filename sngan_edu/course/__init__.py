"""Course tooling: notebook setup, exercise checks, student copies, demo, rescore."""
