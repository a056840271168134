"""A bare FastAPI application answering ``POST /api/orders`` with a pydantic model of the order (the
main fields of Manticore's order body, strict types, unknown fields rejected) and a 201 JSON answer.
No middleware, no authentication, no exchange: what FastAPI + pydantic alone cost per request.

Run: ``python -m uvicorn benchmarks.reference_apps.fastapi_app:app --loop uvloop --http httptools
--no-access-log``.
"""

from __future__ import annotations

import itertools
from typing import Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

Number = StrictStr | StrictInt | StrictFloat


class OrderIn(BaseModel):
    """A new order, validated like Manticore's (strings or numbers for amounts)."""

    model_config = ConfigDict(extra="forbid")

    symbol: StrictStr = Field("BTC/USD", max_length=40)
    side: Literal["buy", "sell", "BUY", "SELL"]
    quantity: Number
    price: Number | None = None
    order_type: StrictStr | None = Field(None, max_length=20)
    time_in_force: StrictStr | None = Field(None, max_length=4)
    client_order_id: StrictStr | None = Field(None, max_length=64)
    user_id: StrictStr | None = Field(None, max_length=128)


app = FastAPI(title="reference FastAPI POST", docs_url=None, redoc_url=None)
_ids = itertools.count(1)


@app.post("/api/orders", status_code=201)
async def place_order(order: OrderIn) -> dict[str, Any]:
    """Validate and echo the order with an id."""
    return {"status": "success", "order_id": f"F-{next(_ids)}", "order": order.model_dump()}
