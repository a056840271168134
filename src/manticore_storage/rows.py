"""The layouts of the rows the writer sends to the database, defined once.

The write-behind writer (:mod:`manticore_storage.batch`) sends rows as plain sequences in a fixed column
order to prebuilt ``executemany`` statements; these tuples name that order. They equal the column
order of :mod:`manticore_storage.schema`'s tables (a test checks it), so the same values also build
dicts for SQLAlchemy statements (``dict(zip(ORDER_COLUMNS, values))``).
"""

from __future__ import annotations

from typing import Any, Final

__all__ = [
    "FILL_COLUMNS",
    "FILL_POSITIONS",
    "ORDER_COLUMNS",
    "ORDER_FLAGS",
    "ORDER_KEY_COLUMNS",
    "ORDER_NULLABLE",
    "TRADE_COLUMNS",
    "TRADE_NULLABLE",
    "FillValues",
    "OrderValues",
    "TradeValues",
]

#: ``manticore_orders``' columns, in table order.
ORDER_COLUMNS: Final = (
    "symbol",
    "order_id",
    "side",
    "price",
    "quantity",
    "filled_quantity",
    "remaining_quantity",
    "visible_quantity",
    "displayed_quantity",
    "order_type",
    "time_in_force",
    "expiry_time",
    "user_id",
    "user_id_is_int",
    "timestamp",
    "stop_price",
    "trail_value",
    "trail_is_percent",
    "trail_reference_price",
    "self_trade_prevention",
    "triggered",
    "status",
    "cancel_reason",
    "priority",
    "last_sequence",
    "updated_at",
    "client_order_id",
)
#: Positions in an order row of the columns the writer may leave empty (None).
ORDER_NULLABLE: Final = tuple(
    ORDER_COLUMNS.index(name)
    for name in (
        "price",
        "displayed_quantity",
        "expiry_time",
        "user_id",
        "stop_price",
        "trail_value",
        "trail_reference_price",
        "cancel_reason",
        "client_order_id",
    )
)
#: Positions in an order row of the boolean columns (always a bool in the writer's rows).
ORDER_FLAGS: Final = tuple(
    ORDER_COLUMNS.index(name) for name in ("user_id_is_int", "trail_is_percent", "triggered")
)
#: The primary key of ``manticore_orders``.
ORDER_KEY_COLUMNS: Final = ("symbol", "order_id")
#: The columns a fill changes, in the order of :data:`FillValues`.
FILL_COLUMNS: Final = (
    "filled_quantity",
    "remaining_quantity",
    "visible_quantity",
    "priority",
    "status",
    "last_sequence",
    "updated_at",
)
#: Where each of :data:`FILL_COLUMNS` sits in an order row.
FILL_POSITIONS: Final = tuple(ORDER_COLUMNS.index(name) for name in FILL_COLUMNS)
#: ``manticore_trades``' columns, in table order.
TRADE_COLUMNS: Final = (
    "symbol",
    "trade_id",
    "sequence",
    "price",
    "quantity",
    "maker_order_id",
    "taker_order_id",
    "maker_user_id",
    "taker_user_id",
    "taker_side",
    "maker_fee",
    "taker_fee",
    "timestamp",
    "maker_client_order_id",
    "taker_client_order_id",
)
#: Positions in a trade row of the columns the writer may leave empty (None).
TRADE_NULLABLE: Final = tuple(
    TRADE_COLUMNS.index(name)
    for name in ("maker_user_id", "taker_user_id", "maker_client_order_id", "taker_client_order_id")
)

#: An order row's values in :data:`ORDER_COLUMNS` order (27 items). A list rather than a tuple: a fill
#: of the same order later in one batch is merged into it in place.
OrderValues = list[Any]
#: A fill's values: :data:`FILL_COLUMNS` (decimals as stored, ``status`` a str, ``last_sequence`` an
#: int, ``updated_at`` a float or None), then the order id.
FillValues = tuple[object, object, object, int, str, int, "float | None", str]
#: A trade row's values in :data:`TRADE_COLUMNS` order: ``symbol, trade_id, sequence, price, quantity,
#: maker_order_id, taker_order_id, maker_user_id, taker_user_id, taker_side, maker_fee, taker_fee,
#: timestamp, maker_client_order_id, taker_client_order_id`` (decimals as stored).
TradeValues = tuple[
    str,
    str,
    int,
    object,
    object,
    str,
    str,
    "str | None",
    "str | None",
    str,
    object,
    object,
    float,
    "str | None",
    "str | None",
]
