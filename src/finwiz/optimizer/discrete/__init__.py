"""The whole-share stage: the rounding and its descent (``_rounding``), and the exact
mixed-integer mode (``_exact``)."""
