"""The configurable limits of pre-trade checks."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from .amounts import parse_number

__all__ = ["RiskLimits"]


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Limits applied by ``check_order`` / ``check_modify``; every field is optional (None = no limit).

    Per order (a market may have its own, see ``RiskManager.register_market``):

    * ``max_order_quantity``: largest quantity of one order, in base units.
    * ``max_order_notional``: largest notional of one order, in quote units (limit price x quantity; for
      a market order the estimated sweep cost, for a stop-market the stop price x quantity).
    * ``price_band``: fat-finger band as a fraction (``Decimal("0.10")`` = 10%): a limit price farther
      than this from the reference price (last trade, else mid, else no check) is rejected, and so is a
      market order whose sweep would reach beyond it.

    Per user (always the manager's limits):

    * ``max_open_orders``: largest number of live orders (resting or waiting stops) over all markets.
    * ``rate_limit_orders`` within ``rate_limit_window`` seconds: at most that many approved checks in
      any sliding window of that length (give both or neither).

    Decimals may be given as ``Decimal``, ``int`` or ``str``; they are stored as ``Decimal``. Raises
    ``ValueError`` for a non-positive or non-finite limit, or a rate limit given by halves.
    """

    max_order_quantity: Decimal | None = None
    max_order_notional: Decimal | None = None
    price_band: Decimal | None = None
    max_open_orders: int | None = None
    rate_limit_orders: int | None = None
    rate_limit_window: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_order_quantity", "max_order_notional", "price_band"):
            value = getattr(self, name)
            if value is not None:
                number = parse_number(value, name, allow_float=False)
                if number <= 0:
                    raise ValueError(f"{name} must be positive, got {value!r}")
                object.__setattr__(self, name, number)
        for name in ("max_open_orders", "rate_limit_orders"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        window = self.rate_limit_window
        if window is not None:
            if isinstance(window, bool) or not isinstance(window, (int, float)) or not math.isfinite(window):
                raise ValueError(f"rate_limit_window must be a finite number of seconds, got {window!r}")
            if window <= 0:
                raise ValueError(f"rate_limit_window must be positive, got {window!r}")
            object.__setattr__(self, "rate_limit_window", float(window))
        if (self.rate_limit_orders is None) != (window is None):
            raise ValueError("give both rate_limit_orders and rate_limit_window, or neither")
