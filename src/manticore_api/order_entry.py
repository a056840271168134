"""Order entry independent of the transport: the commands behind ``POST /api/orders``, ``PATCH`` and
``DELETE /api/orders/...``, and the error mapping of the REST API, for transports that are not FastAPI
routes (the WebSocket order entry of ``/ws``, :mod:`manticore_api.routes.stream`).

Contracts:

- :func:`place`, :func:`modify`, :func:`cancel` and :func:`cancel_by_client_id` run one command on the
  exchange (on the loop thread, like the REST handlers) and return a :class:`Submitted`: the command's
  journal position and the success status and body that REST answers for it. The caller must not send
  that body before ``service.durable(submitted.position)`` has returned. A command that raises has
  changed nothing (nothing was journaled).
- :func:`error_answer` maps an exception to ``(status, {"code", "message", ...})`` exactly as the REST
  error handlers (:mod:`manticore_api.routes.errors`) do: :class:`~manticore_matching.ExchangeError` and
  :class:`~manticore_auth.AuthError` keep their status and code; a pydantic ``ValidationError`` is 400
  ``invalid`` with the same message REST gives for the same body. A rate-limit refusal (429
  ``rate_limited``) also carries ``retry_after`` (whole seconds, REST's ``Retry-After`` header) and,
  when known, ``rate_limit`` (REST's ``X-RateLimit-Limit``).
- :func:`parse_order` / :func:`parse_modify` validate a body with the REST request models
  (:class:`~manticore_api.schemas.OrderIn`, :class:`~manticore_api.schemas.ModifyIn`);
  :func:`order_fields` validates an order body as :func:`parse_order` and returns the model's field
  values only (what :func:`place` reads), without building the model for a plain body.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from pydantic import ValidationError

from manticore_auth import AuthError
from manticore_matching import ExchangeError, InvalidCommand, OrderRejected, Receipt

from .plainorder import plain_fields, plain_order
from .schemas import ModifyIn, OrderIn
from .security import Caller
from .service import ExchangeService

__all__ = [
    "Submitted",
    "cancel",
    "cancel_by_client_id",
    "error_answer",
    "modify",
    "order_fields",
    "parse_modify",
    "parse_order",
    "place",
    "validation_message",
]


class Submitted(NamedTuple):
    """An accepted command: answer ``status`` with ``body`` once ``position`` is durable.

    ``body`` is built from the command's receipt when it is read: read it only after
    ``service.durable(position)`` has returned (a gateway's receipt is filled in by the shard's answer,
    see :mod:`manticore_cluster.remote`)."""

    position: int
    status: int
    receipt: Receipt
    answer: Callable[[Receipt], dict[str, Any]]

    @property
    def body(self) -> dict[str, Any]:
        """The success body (see the class doc)."""
        return self.answer(self.receipt)


def parse_order(fields: Mapping[str, Any]) -> OrderIn:
    """The order body, validated as ``POST /api/orders`` validates it (pydantic ValidationError); a
    plain body is built by :func:`~manticore_api.plainorder.plain_order` (the same model)."""
    order = plain_order(fields)
    return order if order is not None else OrderIn.model_validate(fields)


def order_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The order body's field values, validated as ``POST /api/orders`` validates it (pydantic
    ValidationError): the ``__dict__`` of :func:`parse_order`'s model, for :func:`place`; a plain body's
    without building the model (:func:`~manticore_api.plainorder.plain_fields`)."""
    values = plain_fields(fields)
    return values if values is not None else OrderIn.model_validate(fields).__dict__


def parse_modify(fields: Mapping[str, Any]) -> ModifyIn:
    """The modify body, validated as ``PATCH /api/orders/{id}`` validates it (pydantic ValidationError)."""
    return ModifyIn.model_validate(fields)


def place(service: ExchangeService, caller: Caller, body: OrderIn | dict[str, Any]) -> Submitted:
    """Place ``body`` for ``caller`` (201 and ``{"status", "order_id", "order"}``, as REST).

    ``body`` is the validated model or its field values: a dict as :func:`order_fields` or
    :func:`~manticore_api.plainorder.plain_fields` returns it (every field of
    :class:`~manticore_api.schemas.OrderIn`, validated; never a body as received).
    ``user_id``, if given, must be the caller's when auth is required (InvalidCommand otherwise);
    without auth it names the user the order is placed for."""
    fields = body if type(body) is dict else body.__dict__
    given_user = fields["user_id"]
    if given_user is not None and service.require_auth and given_user != caller.user_id:
        raise InvalidCommand("user_id does not match the authenticated user")
    user_id = given_user if given_user is not None and not service.require_auth else caller.user_id
    price = fields["price"]
    receipt = service.exchange.place_order(
        user_id,
        fields["symbol"],
        fields["side"].lower(),
        fields["quantity"],
        price=price,
        order_type=fields["order_type"] or ("limit" if price is not None else "market"),
        time_in_force=fields["time_in_force"],
        expiry_time=fields["expiry_time"],
        stop_price=fields["stop_price"],
        displayed_quantity=fields["displayed_quantity"],
        trail_value=fields["trail_value"],
        trail_is_percent=fields["trail_is_percent"],
        self_trade_prevention=fields["self_trade_prevention"],
        client_order_id=fields["client_order_id"],
    )
    return Submitted(receipt.position, 201, receipt, _placed)


def modify(service: ExchangeService, caller: Caller, order_id: str, body: ModifyIn) -> Submitted:
    """Modify the caller's live order (any user's for an admin), 200 as REST's PATCH."""
    receipt = service.exchange.modify_order(
        None if caller.is_admin else caller.user_id,
        order_id,
        new_price=body.new_price,
        new_quantity=body.new_quantity,
        new_expiry_time=body.new_expiry_time,
    )
    return Submitted(receipt.position, 200, receipt, _modified)


def cancel(service: ExchangeService, caller: Caller, order_id: str) -> Submitted:
    """Cancel the caller's live order (any user's for an admin), 200 as REST's DELETE."""
    receipt = service.exchange.cancel_order(None if caller.is_admin else caller.user_id, order_id)
    return Submitted(receipt.position, 200, receipt, _cancelled)


def cancel_by_client_id(service: ExchangeService, caller: Caller, client_order_id: str) -> Submitted:
    """Cancel the caller's own live order named ``client_order_id``, 200 as REST's
    ``DELETE /api/orders/by-client-id/{client_order_id}``."""
    receipt = service.exchange.cancel_order_by_client_id(caller.user_id, client_order_id)
    return Submitted(receipt.position, 200, receipt, _cancelled_by_client_id(client_order_id))


def _placed(receipt: Receipt) -> dict[str, Any]:
    return {"status": "success", "order_id": receipt.order_id, "order": receipt.order}


def _modified(receipt: Receipt) -> dict[str, Any]:
    return {"status": "success", "order_id": receipt.order_id, "order": receipt.order}


def _cancelled(receipt: Receipt) -> dict[str, Any]:
    return {"status": "success", "message": f"Order {receipt.order_id} cancelled"}


def _cancelled_by_client_id(client_order_id: str) -> Callable[[Receipt], dict[str, Any]]:
    def answer(receipt: Receipt) -> dict[str, Any]:
        return {
            "status": "success",
            "order_id": receipt.order_id,
            "client_order_id": client_order_id,
            "order": receipt.order,
            "message": f"Order {receipt.order_id} cancelled",
        }

    return answer


def validation_message(errors: Sequence[Any]) -> str:
    """REST's 400 ``invalid`` message for pydantic errors: ``field: problem`` for the first five,
    joined by ``; `` (the ``body`` location prefix of a request body is left out)."""
    problems = []
    for item in errors[:5]:
        where = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
        problems.append(f"{where}: {item.get('msg')}" if where else str(item.get("msg")))
    return "; ".join(problems) or "invalid request"


def error_answer(exc: Exception) -> tuple[int, dict[str, Any]] | None:
    """``(status, error)`` for an exception the REST API answers with a 4xx/503 and a code; None for
    any other exception (a bug: REST would answer 500)."""
    if isinstance(exc, ExchangeError):
        error: dict[str, Any] = {"code": exc.code, "message": exc.message}
        if isinstance(exc, OrderRejected) and exc.code == "rate_limited":
            headers = exc.headers
            error["retry_after"] = int(headers["Retry-After"])
            if exc.rate_limit is not None:
                error["rate_limit"] = exc.rate_limit
        return exc.status, error
    if isinstance(exc, AuthError):
        return exc.status, {"code": exc.code, "message": exc.message}
    if isinstance(exc, ValidationError):
        return 400, {"code": "invalid", "message": validation_message(exc.errors())}
    return None
