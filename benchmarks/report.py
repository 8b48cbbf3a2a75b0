"""Turn a pytest-benchmark JSON into ``benchmarks/results.md`` (tables, ratios) and a PNG plot.

pytest benchmarks --benchmark-json=benchmarks/results/latest.json && python benchmarks/report.py
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REFERENCE = {"engine": "plain", "peers": "raw_osqp", "dask": None, "binding": "plain", "tax": "blind"}
"""The reference kind of each group prefix. ``binding-N`` (issue 11: the default strategy with binding
limits) is against the plain cvxpy + Clarabel continuous model; ``binding-resolve``, ``-batch``,
``-memory`` and the ``quality-*`` groups have no reference: their figures are in the notes. ``tax-431``
(issue 12) is against the tax-blind rebalance of the same account; ``tax-frontier`` and ``tax-exact-N``
have no reference."""


def load(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text())
    return list(data["benchmarks"])


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


def _group_order(group: str) -> tuple[str, float, str]:
    """Groups by prefix, sized ones by size (``binding-431`` before ``binding-2000``)."""
    prefix, _, rest = group.partition("-")
    return (prefix, float(rest) if rest.isdigit() else float("inf"), rest)


def tables(benchmarks: list[dict[str, Any]]) -> str:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for b in benchmarks:
        groups[b.get("group") or "other"].append(b)
    lines = ["# finwiz benchmark results", ""]
    lines.append("Times in ms (median of the rounds; min in brackets). Ratios are to the group's reference.")
    lines.append("")
    for group in sorted(groups, key=_group_order):
        rows = sorted(groups[group], key=lambda b: b["stats"]["median"])
        prefix = group.split("-")[0]
        ref_kind = REFERENCE.get(prefix)
        ref = next((b for b in rows if b["extra_info"].get("kind") == ref_kind), None)
        if prefix == "dask":
            ref = next((b for b in rows if b["extra_info"].get("workers") == 1), None)
        lines += [
            f"## {group}",
            "",
            "| benchmark | kind | median ms (min) | rounds | ratio | notes |",
            "|---|---|---|---|---|---|",
        ]
        for b in rows:
            s, info = b["stats"], b["extra_info"]
            ratio = ""
            if ref is not None:
                ratio = f"{s['median'] / ref['stats']['median']:.2f}x"
                if prefix == "dask":
                    ratio = f"speed-up {ref['stats']['median'] / s['median']:.2f}x"
            notes = ", ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                for k, v in info.items()
                if k not in ("kind", "n")
            )
            timing = f"{_ms(s['median'])} ({_ms(s['min'])})"
            lines.append(f"| {b['name']} | {info.get('kind', '')} | {timing} | {s['rounds']} | {ratio} | {notes} |")
        lines.append("")
    return "\n".join(lines)


def plot(benchmarks: list[dict[str, Any]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for b in benchmarks:
        info = b["extra_info"]
        group = b.get("group") or ""
        prefix, _, size = group.partition("-")
        if (
            "n" in info
            and "accounts" not in info
            and (prefix in ("engine", "single", "peers") or (prefix == "binding" and size.isdigit()))
        ):
            series[f"{prefix}:{info.get('kind')}"].append((int(info["n"]), b["stats"]["median"] * 1000))
    fig, ax = plt.subplots(figsize=(8, 5))
    for label, points in sorted(series.items()):
        points.sort()
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("assets")
    ax.set_ylabel("median time (ms)")
    ax.set_title("finwiz single rebalance vs plain cvxpy, peers and raw OSQP")
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("json", nargs="?", default=str(HERE / "results" / "latest.json"))
    parser.add_argument("--markdown", default=str(HERE / "results.md"))
    parser.add_argument("--plot", default=str(HERE / "results.png"))
    args = parser.parse_args()
    benchmarks = load(Path(args.json))
    Path(args.markdown).write_text(tables(benchmarks) + "\n")
    plot(benchmarks, Path(args.plot))
    print(f"wrote {args.markdown} and {args.plot}")


if __name__ == "__main__":
    main()
