"""closedloop: closed-loop (闭环) marketing analytics — Plan, Do, Check, Act on real numbers."""

from closedloop.errors import DataError

__version__ = "0.1.0"
__all__ = ["DataError", "__version__"]
