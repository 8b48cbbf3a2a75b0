"""A dense covariance that is a low-rank part plus a diagonal, found and checked.

Every covariance finwiz estimates from fewer days than assets has this form (sample: a Gram matrix
of rank below the days; Ledoit-Wolf: that plus a multiple of the identity; EWMA: a weighted Gram
matrix), and so has one a factor model implies. Written as ``G G' + diag(d)`` with ``G`` of ``r``
columns it is a factor model, which the optimizer solves with ``r`` auxiliary rows instead of a
dense ``n x n`` block (seconds to milliseconds at 2,000 assets).

How it is found: split the assets into three groups ``A``, ``B``, ``C``. A block across two groups
holds no diagonal entry, so ``Sigma[C, B] = G_C G_B'`` (rank ``r``), and where ``G_B`` and ``G_C``
have full column rank ``(G G')[A, A] = Sigma[A, B] pinv(Sigma[C, B]) Sigma[C, A]``: the diagonal
of the low-rank part, and so ``d``, from three pseudo-inverses of rank ``r`` (randomised, as ``r``
is small). ``G`` is then the top of ``Sigma - diag(d)``'s spectrum. Nothing is assumed: the split
is kept only if it reproduces every entry of the matrix to :data:`SPLIT_TOLERANCE` of its largest
variance with ``d >= 0`` (and so is PSD), else the caller takes the exact root.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SPLIT_TOLERANCE", "low_rank_split"]

SPLIT_TOLERANCE = 1e-10
"""Largest entry of ``Sigma - (G G' + diag(d))`` a split may leave, in units of the largest
variance: the risk of any weights it changes by at most this x the largest variance x their
squared 1-norm."""
_RANK_GAP = 1e-13
"""An eigenvalue of a sample's Gram matrix under this x its largest is rounding, not a factor (a
factor weaker than ~3e-7 of the largest in a block's singular values is not told apart: then the
check fails and the exact root is taken)."""
_BLOCK_ROWS = 512  # rows per step of the check (a copy of the matrix would be 32 MB at 2,000 assets)


def low_rank_split(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(G, d)`` with ``matrix = G G' + diag(d)`` (checked, see the module docstring), ``d >= 0``
    and ``G`` of fewer than ``n / 4`` columns; None when ``matrix`` (symmetric) has no such split."""
    n = len(matrix)
    most = n // 4 - 1  # more factors than this: the QP takes the dense form anyway
    if most < 1:
        return None
    # Groups interleaved (an industry's consecutive assets fall in all three), each group's rows a
    # view; a block across groups is those rows on the other group's columns (every third).
    rows = [matrix[g::3] for g in range(3)]
    low_diagonal = np.empty(n)
    ranks = set()
    for a, b, c in ((0, 1, 2), (1, 2, 0), (2, 0, 1)):
        cross = _cross(rows[c], b, most)
        if cross is None:
            return None
        basis, wide = cross  # Sigma[C, B] = basis @ wide, basis orthonormal
        inverse = _inverse(wide @ wide.T)
        if inverse is None:
            return None
        ranks.add(basis.shape[1])
        # pinv(basis @ wide) = wide' (wide wide')^-1 basis'
        left = rows[a][:, b::3] @ (wide.T @ inverse)
        right = rows[a][:, c::3] @ basis
        low_diagonal[a::3] = np.einsum("ij,ij->i", left, right)
    if len(ranks) != 1:
        return None
    tolerance = SPLIT_TOLERANCE * float(np.diag(matrix).max(initial=0.0))
    d = np.diag(matrix) - low_diagonal
    if (d < -tolerance).any():
        return None
    d = np.clip(d, 0.0, None)
    root = _root(matrix, d, ranks.pop())
    if root is None or not _reproduces(matrix, root, d, tolerance):
        return None
    return root, d


def _full_rank(block: np.ndarray) -> bool:
    """Whether the square ``block``, off the diagonal, has full numerical rank: then every cross
    block holding it has more factors than a split may have (a covariance of more days than assets
    is refused on this one block, not on a randomised range of the whole cross block; a split's
    few factors show in the small samples before it, so it never pays for this test)."""
    values = np.linalg.eigvalsh(block.T @ block)
    return bool(values[-1] > 0 and values[0] > _RANK_GAP * values[-1])


def _cross(rows: np.ndarray, group: int, most: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The block of ``rows`` on the columns of ``group`` as ``basis @ wide`` with ``basis``
    orthonormal, of its numerical rank (at most ``most``; None above), from a randomised range
    that grows until it holds it."""
    rng = np.random.default_rng(0)  # the same answer on every call
    block = np.ascontiguousarray(rows[:, group::3])  # a third of the columns: a third of the products
    for size in sorted({min(32, most + 1), min(128, most + 1), most + 1}):
        if size == most + 1 and _full_rank(block[:size, :size]):
            return None  # one square part already has too many factors: no sample of the whole
        sample = block @ rng.standard_normal((block.shape[1], size))
        values, vectors = np.linalg.eigh(sample.T @ sample)
        rank = int((values > _RANK_GAP * values[-1]).sum()) if values[-1] > 0 else 0
        if rank < size:  # the sample is rank-deficient: it holds the whole range
            break
    else:
        return None
    basis = _orthonormal(sample @ vectors[:, size - rank :])
    return None if basis is None else (basis, basis.T @ block)


def _orthonormal(columns: np.ndarray) -> np.ndarray | None:
    """An orthonormal basis of the span of ``columns`` (independent; None if they are not),
    through their Gram matrix twice (small ``eigh`` only: LAPACK on the tall array stalled on
    busy cores)."""
    for _ in range(2):
        values, vectors = np.linalg.eigh(columns.T @ columns)
        if values.size and values[0] <= 0:
            return None
        columns = columns @ (vectors / np.sqrt(values)) @ vectors.T
    return columns


def _inverse(square: np.ndarray) -> np.ndarray | None:
    """The inverse of a small symmetric positive definite matrix (None if it is not)."""
    values, vectors = np.linalg.eigh(square)
    if values.size and values[0] <= 0:
        return None
    return np.asarray((vectors / values) @ vectors.T)


def _root(matrix: np.ndarray, d: np.ndarray, rank: int) -> np.ndarray | None:
    """``G`` (``rank`` columns) with ``G G'`` the top of ``matrix - diag(d)``'s spectrum, through
    its range (randomised, with a few extra columns to see past it); None if the rest is not ~0."""
    n = len(matrix)
    rng = np.random.default_rng(1)
    probe = rng.standard_normal((n, min(n, rank + 8)))
    sample = matrix @ probe - d[:, None] * probe
    values, vectors = np.linalg.eigh(sample.T @ sample)
    if rank == 0 or (values[:-rank] > _RANK_GAP * values[-1]).any():
        return np.zeros((n, 0)) if rank == 0 else None
    basis = _orthonormal(sample @ vectors[:, -rank:])
    if basis is None:
        return None
    inner = basis.T @ (matrix @ basis) - (basis.T * d) @ basis
    values, vectors = np.linalg.eigh((inner + inner.T) / 2)
    top = values[::-1][:rank]
    if rank and top[-1] <= 0:
        return None
    return np.asarray((basis @ vectors[:, ::-1][:, :rank]) * np.sqrt(top))


def _reproduces(matrix: np.ndarray, root: np.ndarray, d: np.ndarray, tolerance: float) -> bool:
    """Whether ``root root' + diag(d)`` is ``matrix`` to ``tolerance`` on every entry (by row
    blocks, so that no second ``n x n`` array is held)."""
    n = len(matrix)
    for start in range(0, n, _BLOCK_ROWS):
        rows = slice(start, min(n, start + _BLOCK_ROWS))
        gap = root[rows] @ root.T
        np.subtract(matrix[rows], gap, out=gap)
        gap[np.arange(gap.shape[0]), np.arange(start, rows.stop)] -= d[rows]
        if gap.max(initial=0.0) > tolerance or gap.min(initial=0.0) < -tolerance:
            return False
    return True
