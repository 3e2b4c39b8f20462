"""The one error a user sees for bad input: what, where, which rule, which rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # not imported at run time: a run starts its kernel before pandas is loaded
    import pandas as pd


class DataError(ValueError):
    """Input that breaks the data contract.

    The message names the source (file or frame), the column, the rule and up to five
    offending rows, so the fix is obvious without a traceback into pandas.
    """

    def __init__(
        self,
        source: str,
        rule: str,
        column: str | None = None,
        rows: pd.DataFrame | None = None,
        n_bad: int | None = None,
    ):
        self.source, self.rule, self.column = source, rule, column
        self.n_bad = n_bad if n_bad is not None else (0 if rows is None else len(rows))
        where = f"{source}, column '{column}'" if column else source
        msg = f"{where}: {rule}"
        if rows is not None and len(rows):
            shown = rows.head(5).to_string(max_colwidth=40)
            msg += f"\n{self.n_bad:,} offending row(s); the first {min(5, len(rows))}:\n{shown}"
        super().__init__(msg)
        self.rows = None if rows is None else rows.head(5)
