"""Households: several accounts rebalanced as one stacked problem (see ``_stack`` and ``_solve``)."""
