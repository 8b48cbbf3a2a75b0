"""The whole-share stage (``_stage``): the rounding (``_rounding``, the driver) from each asset's
candidates (``_candidates``), priced exactly against the coupled rows (``_pricing``), settled by a
0/1 program where the rows bind (``_settling``), then the descent (``_descent``: one loop over the
move kinds of ``_move_kinds``); the whole-share search on coarse books (``_search``) and the exact
mixed-integer mode (``_exact``)."""
