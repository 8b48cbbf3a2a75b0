"""The continuous stage: the model solved as a native QP (``_qp``) or through cvxpy
(``_assembler``), chosen by ``_solve``."""
