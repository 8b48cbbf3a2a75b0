"""The verify stage: every limit of the description checked on the trades (``_compliance``),
and why a request is infeasible (``_diagnosis``)."""
