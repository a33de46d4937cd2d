"""k-anonymity on the quasi-identifiers, counted incrementally.

The quasi-identifiers are the published columns of kinds birth date, address, gender and age
(unless suppressed). Every chunk adds the group sizes of its (published) quasi-identifier
combinations to a running table, so memory grows with the number of distinct combinations,
not with the rows. k is the smallest group size.

When k is below ``k_min`` the generalized columns are coarsened together, one step of a ladder
at a time (month -> year -> 5-year band -> decade; district -> city -> province; 5 -> 10 -> 20
year age bands). Because the levels nest, the group sizes of every step are computed from the
level-0 table at the end, without a second pass over the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from .desensitize import coarsen, levels_for

_COUNT = "__rows"


@dataclass(frozen=True)
class QuasiIdentifier:
    column: str
    kind: str | None
    #: True when the column is generalized and so can be coarsened further.
    generalized: bool

    @property
    def max_level(self) -> int:
        return len(levels_for(self.kind)) - 1 if self.generalized else 0


class GroupCounter:
    """Running group sizes of the quasi-identifier combinations."""

    #: Merge the per-chunk tables once this many are pending.
    MERGE_EVERY = 16

    def __init__(self, qis: Sequence[QuasiIdentifier]):
        self.qis = list(qis)
        self._tables: list[pa.Table] = []
        self._merged: pa.Table | None = None

    def add(self, table: pa.Table) -> None:
        """Add the published quasi-identifier columns of one chunk."""
        if not self.qis or table.num_rows == 0:
            return
        keys = [q.column for q in self.qis]
        sub = table.select(keys).rename_columns([f"q{i}" for i in range(len(keys))])
        self._tables.append(_group(sub, count=None))
        if len(self._tables) >= self.MERGE_EVERY:
            self._merge()

    def _merge(self) -> None:
        parts = ([self._merged] if self._merged is not None else []) + self._tables
        self._tables = []
        if parts:
            self._merged = _group(
                pa.concat_tables(parts, promote_options="permissive"), count=_COUNT
            )

    def groups(self) -> pa.Table | None:
        self._merge()
        return self._merged

    @property
    def steps(self) -> int:
        """The number of the coarsest ladder step."""
        return max((q.max_level for q in self.qis), default=0)

    def k_at(self, step: int) -> int | None:
        """The smallest group size once every generalized column is at ``min(step, max)``."""
        groups = self.groups()
        if groups is None or groups.num_rows == 0:
            return None
        if step:
            cols = []
            for i, q in enumerate(self.qis):
                col = groups.column(f"q{i}")
                level = min(step, q.max_level)
                cols.append(coarsen(q.kind, col, level) if level else col)
            cols.append(groups.column(_COUNT))
            groups = _group(pa.table(cols, names=[*groups.column_names]), count=_COUNT)
        return int(pc.min(groups.column(_COUNT)).as_py())


def _group(table: pa.Table, *, count: str | None) -> pa.Table:
    keys = [n for n in table.column_names if n != _COUNT]
    grouped = table.group_by(keys, use_threads=False)
    if count is None:
        out, source = grouped.aggregate([([], "count_all")]), "count_all"
    else:
        out, source = grouped.aggregate([(count, "sum")]), f"{count}_sum"
    names = [_COUNT if n == source else n for n in out.column_names]
    return out.rename_columns(names).select([*keys, _COUNT])


def choose_step(counter: GroupCounter, k_min: int) -> tuple[int, int | None]:
    """The first ladder step whose k reaches ``k_min`` (or the last step), and its k."""
    k = counter.k_at(0)
    if k is None:
        return 0, None
    step = 0
    while k < k_min and step < counter.steps:
        step += 1
        k = counter.k_at(step)
    return step, k
