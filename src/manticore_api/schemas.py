"""Request and response bodies of the REST API (pydantic models; they also make the OpenAPI schema).

Prices, quantities and amounts are accepted as JSON strings or numbers and always returned as exact
decimal strings. Unknown fields in a request body are rejected.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

__all__ = [
    "ApiKeyOut",
    "DepositIn",
    "ErrorOut",
    "LoginIn",
    "MarketIn",
    "ModifyIn",
    "OrderIn",
    "OrderPlaced",
    "UserIn",
]

Number = StrictStr | StrictInt | StrictFloat
_NUMBER_HELP = "decimal string (exact) or JSON number"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrderIn(_Strict):
    """A new order. ``price`` omitted or null makes a market order."""

    symbol: StrictStr = Field("BTC/USD", max_length=40)
    side: Literal["buy", "sell", "BUY", "SELL"]
    quantity: Number = Field(description=_NUMBER_HELP, examples=["0.5"])
    price: Number | None = Field(
        None, description=_NUMBER_HELP + "; omit for a market order", examples=["30000"]
    )
    order_type: StrictStr | None = Field(
        None,
        max_length=20,
        description="limit, market, post_only, stop_limit, stop_market, trailing_stop, iceberg",
    )
    time_in_force: StrictStr | None = Field(None, max_length=4, description="GTC, IOC, FOK or GTD")
    expiry_time: StrictInt | StrictFloat | None = Field(
        None, description="GTD expiry, seconds since the epoch"
    )
    stop_price: Number | None = None
    displayed_quantity: Number | None = None
    trail_value: Number | None = None
    trail_is_percent: StrictBool = False
    self_trade_prevention: StrictStr | None = Field(None, max_length=20)
    client_order_id: StrictStr | None = Field(None, max_length=64)
    user_id: StrictStr | None = Field(
        None, max_length=128, description="ignored when authenticated (must then match, if given)"
    )


class ModifyIn(_Strict):
    """Changes to a live order; at least one field."""

    new_price: Number | None = None
    new_quantity: Number | None = Field(None, description="the new total quantity")
    new_expiry_time: StrictInt | StrictFloat | None = None


class DepositIn(_Strict):
    user_id: StrictStr = Field(max_length=128)
    asset: StrictStr = Field(max_length=16)
    amount: Number


class MarketIn(_Strict):
    symbol: StrictStr = Field(max_length=40)
    base_asset: StrictStr = Field(max_length=16)
    quote_asset: StrictStr = Field(max_length=16)
    tick_size: Number
    lot_size: Number
    maker_fee_rate: Number = "0"
    taker_fee_rate: Number = "0"


class UserIn(_Strict):
    username: StrictStr = Field(max_length=64)
    role: Literal["trader", "admin"] = "trader"
    password: StrictStr | None = Field(None, min_length=8, max_length=256)


class LoginIn(_Strict):
    username: StrictStr = Field(max_length=64)
    password: StrictStr = Field(max_length=256)


class ErrorOut(BaseModel):
    status: Literal["error"] = "error"
    code: str
    message: str


class OrderPlaced(BaseModel):
    status: Literal["success"] = "success"
    order_id: str
    order: dict[str, Any] | None = None


class ApiKeyOut(BaseModel):
    api_key: str
    api_secret: str = Field(description="shown once; store it now")
