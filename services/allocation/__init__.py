"""The allocation service: the order book that shares scarce H200 batches among approved orders."""

from services.allocation.domain import NAME

__all__ = ["NAME"]
