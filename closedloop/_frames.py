"""The one door from a user's frame to narwhals, shared by the aggregating modules."""

from __future__ import annotations

import narwhals as nw

from closedloop.errors import DataError


def eager_frame(data, source: str) -> nw.DataFrame:
    """A pandas or polars frame as an eager narwhals frame; a clear error when empty or not a frame."""
    try:
        frame = nw.from_native(data, eager_only=True)
    except TypeError as exc:
        raise DataError(source, f"expected a pandas or polars DataFrame, got {type(data)}") from exc
    if len(frame) == 0:
        raise DataError(source, "the input is empty (no rows)")
    return frame
