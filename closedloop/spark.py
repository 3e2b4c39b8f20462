"""Spark as the engine of a report (分布式计算): the session a plan's aggregations run on.

A plan with ``engine: spark`` (or a Spark source) hands its row tables — transactions, funnel
events, order lines — to a Spark session, and every call of the Check reduces them there:
the customer table, the lift's sufficient statistics, the funnel, the outcomes, the follow-up,
the contacts' per-customer figures and the basket rules (Spark ML's FP-growth). Only those
summaries come back to pandas.

:func:`session` is the one place a session is made: ``sc://host:15002`` a Spark Connect
server, a master (``local[2]``, ``yarn``, ``spark://host:7077``, ``k8s://...``) a classic
session, ``""`` the one already running in the process (a Databricks notebook,
``spark-submit``). A process keeps one session per place and reuses it. A local session runs
with few shuffle partitions, no web UI, no progress bars, quiet logs and the UTC session time
zone, so that day boundaries are the wall-clock days of the data, as on the local route.
"""

from __future__ import annotations

import os
import shutil
import weakref

import narwhals as nw
import pandas as pd

from closedloop.errors import DataError
from closedloop.plan import SPARK_DEFAULT

__all__ = ["is_spark", "session", "to_spark"]

#: shuffle partitions of a local session: the summaries are small, two cores are the default
LOCAL_PARTITIONS = "2"

_SESSIONS: dict[str, object] = {}
#: pandas frames already on a session (by id, while the frame lives): one upload per table
_UPLOADED: dict[int, tuple[weakref.ref, object, object]] = {}


def is_spark(frame) -> bool:
    """Whether ``frame`` is a PySpark DataFrame (classic or Spark Connect)."""
    if isinstance(frame, nw.DataFrame | nw.LazyFrame):
        frame = frame.to_native()
    return type(frame).__module__.startswith("pyspark.")


def session(where: str = SPARK_DEFAULT):
    """The Spark session at ``where`` (see the module docstring), made once per process; a
    :class:`DataError` naming the session when it cannot be started or reached."""
    from closedloop.sources import _expand, _scrub, _without_variables

    name = f"Spark session {_without_variables(where)}" if where else "the running Spark session"
    if where in _SESSIONS:
        return _SESSIONS[where]
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise DataError(name, "running on Spark needs pyspark: pip install pyspark") from None
    url, secrets = _expand(where, name)
    if not url.startswith("sc://") and url and not _java():
        raise DataError(
            name, "a classic Spark session needs Java 17 (no java on PATH, no JAVA_HOME)"
        )
    try:
        if url.startswith("sc://"):
            found = SparkSession.builder.remote(url).getOrCreate()
        elif not url:
            found = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
        else:
            found = SparkSession.getActiveSession() or _classic(
                SparkSession.builder.master(url), url
            )
    except Exception as exc:  # Spark raises its own types (py4j, connect, runtime)
        raise DataError(name, f"cannot start: {_scrub(exc, secrets)}") from None
    _SESSIONS[where] = found
    return found


def to_spark(frame: pd.DataFrame, spark) -> object:
    """A validated pandas table as a Spark DataFrame on ``spark``, through Arrow (ids stay
    text, times keep their wall clock in the session's time zone). A frame handed over twice
    is uploaded once."""
    import pyarrow as pa

    known = _UPLOADED.get(id(frame))
    if known is not None and known[0]() is frame and known[1] is spark:
        return known[2]
    remote = spark.createDataFrame(pa.Table.from_pandas(frame, preserve_index=False))
    key = id(frame)
    _UPLOADED[key] = (weakref.ref(frame, lambda _: _UPLOADED.pop(key, None)), spark, remote)
    return remote


def _classic(builder, master: str):
    """A classic session without progress bars and with quiet logs; a local one (``local``,
    ``local[N]``) also without web UI, with few shuffle partitions and the UTC time zone. A
    cluster keeps its own settings (``spark-defaults.conf``)."""
    builder = builder.appName("closedloop").config("spark.ui.showConsoleProgress", "false")
    if master.startswith("local"):
        builder = (
            builder.config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", LOCAL_PARTITIONS)
            .config("spark.sql.session.timeZone", "UTC")
        )
    made = builder.getOrCreate()
    made.sparkContext.setLogLevel("ERROR")
    return made


def _java() -> bool:
    return shutil.which("java") is not None or bool(os.environ.get("JAVA_HOME"))
