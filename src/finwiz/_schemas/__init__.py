"""The models behind :mod:`finwiz.schemas`, split by concern (import them from there).

``_base`` validation machinery, constants and enums; ``_inputs`` what users pass in; ``_records``
trades, needs, analysis and checks; ``_result`` the result; ``_legacy`` the original guide's
shapes; ``_presentation`` and ``_presenters`` how a result shows itself; ``_pickling`` the
compact batch pickling. This package imports none of them, so no import circles through it.
"""
