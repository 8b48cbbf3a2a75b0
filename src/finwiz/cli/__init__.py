"""The command line: ``finwiz demo``, ``finwiz rebalance ...``, ``finwiz backtest ...`` (``_main``),
portfolio files (``_portfolio_file``) and the bundled demo (``_demo``)."""

from finwiz.cli._main import _result_json, build_parser, main

__all__ = ["_result_json", "build_parser", "main"]
