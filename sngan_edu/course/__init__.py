"""Course tooling: notebook setup, exercise checks, student copies, demo, re-run, rescore."""
