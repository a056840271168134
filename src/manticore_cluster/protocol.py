"""The wire protocol between gateways and a shard's leader: subjects, requests, replies, stream batches.

Subjects (core NATS, request/reply; only the shard's current leader subscribes to the first two):

* ``<prefix>.cmd.<shard>``: commands (:data:`COMMANDS`), each answered once it is durable;
* ``<prefix>.query.<shard>``: reads (:data:`QUERIES`), answered at once from the leader's memory
  (or its storage for history and fills);
* ``<prefix>.md.<shard>``: the stream messages of durable commands, published by the leader in journal
  order, one NATS message per command (:func:`encode_batch`);
* ``<prefix>.leader.<shard>``: a new leader's announcement that it serves (``{"shard", "instance",
  "term"}``), on which senders re-send their requests in flight at once (:mod:`.leader_news`).

Bodies are JSON (orjson). A request is ``{"cmd": <command id>, "op": <name>, "args": {...}, "retry":
<bool>}``: ``op`` is the name of the :class:`~manticore_matching.Exchange` method and ``args`` its
keyword arguments; ``cmd`` is the sender's id of the request (the same on every retry of it) and
``retry`` is true on the second and later attempts. A reply is ``{"ok": true, "result": ...}`` or
``{"ok": false, "error": {"type", "code", "message", ...}}`` where ``type`` is the class name of the
exception the exchange raised (:mod:`manticore_matching.errors`): :func:`decode_reply` raises the same
class with the same code and message, so a gateway answers exactly the status and body the embedded
server answers. A command's result is its receipt: ``{"position", "order_id", "order", "result"}``.

A JSON body that orjson cannot write (an integer beyond 64 bits, which a client may send as a price) is
written by the standard library with one leading space, which tells :func:`loads` to read it back with
the standard library too, so every number crosses the wire exactly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from manticore_matching import (
    ExchangeError,
    InvalidCommand,
    MarketExists,
    OrderNotFound,
    OrderRejected,
    Receipt,
    ServiceUnavailable,
    UnknownMarket,
)

__all__ = [
    "COMMANDS",
    "QUERIES",
    "ProtocolError",
    "RemoteFailure",
    "Request",
    "cmd_subject",
    "decode_batch",
    "decode_reply",
    "decode_request",
    "dumps",
    "encode_batch",
    "encode_error",
    "encode_ok",
    "encode_request",
    "leader_subject",
    "loads",
    "md_subject",
    "query_subject",
    "receipt_from_result",
    "receipt_result",
]

#: Commands: ``Exchange`` methods that change state, answered once durable.
COMMANDS = frozenset(
    {
        "place_order",
        "modify_order",
        "cancel_order",
        "cancel_order_by_client_id",
        "deposit",
        "withdraw",
        "create_market",
        "expire_due",
        "routed",
    }
)
#: Reads: ``Exchange`` read methods (``markets`` is the property), answered at once.
QUERIES = frozenset(
    {
        "markets",
        "get_snapshot",
        "recent_trades",
        "balances",
        "open_orders",
        "get_order",
        "get_order_by_client_id",
        "recent_order_by_client_id",
        "order_history",
        "fills",
        "statistics",
        "require_market",
        "journal_state",
        "component_health",
        # For a gateway's Binance-compatible surface:
        "risk_limits",
        "stored_trades",
        "trade_rows",
        "flush_storage",
        "settlements",
    }
)

_ERRORS: dict[str, type[ExchangeError]] = {
    cls.__name__: cls
    for cls in (
        ExchangeError,
        InvalidCommand,
        MarketExists,
        OrderNotFound,
        OrderRejected,
        ServiceUnavailable,
        UnknownMarket,
    )
}


class ProtocolError(ValueError):
    """A body that is not a well-formed request, reply or batch."""


class RemoteFailure(RuntimeError):
    """The leader failed on a request with an exception that is not an exchange error (a bug there): the
    gateway answers 500, as the embedded server would."""


def cmd_subject(prefix: str, shard: str) -> str:
    """The command subject of ``shard``."""
    return f"{prefix}.cmd.{shard}"


def query_subject(prefix: str, shard: str) -> str:
    """The read subject of ``shard``."""
    return f"{prefix}.query.{shard}"


def leader_subject(prefix: str, shard: str) -> str:
    """The subject on which a new leader of ``shard`` announces that it serves (:mod:`.leader_news`)."""
    return f"{prefix}.leader.{shard}"


def md_subject(prefix: str, shard: str) -> str:
    """The market-data subject of ``shard`` (durable stream messages, in journal order)."""
    return f"{prefix}.md.{shard}"


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> bytes:
    """``value`` as JSON bytes (Decimal as its string); see the module doc for big integers."""
    try:
        return orjson.dumps(value, default=_default)
    except TypeError:
        return b" " + json.dumps(value, default=_default, separators=(",", ":")).encode()


def loads(data: bytes) -> Any:
    """The value of a body written by :func:`dumps`; ProtocolError if it is not JSON."""
    try:
        if data[:1] == b" ":
            return json.loads(data)
        return orjson.loads(data)
    except ValueError as exc:
        raise ProtocolError(f"not JSON: {exc}") from None


@dataclass(frozen=True)
class Request:
    """A decoded request (see the module doc)."""

    cmd: str
    op: str
    args: dict[str, Any]
    retry: bool = False


def encode_request(cmd: str, op: str, args: dict[str, Any], *, retry: bool = False) -> bytes:
    """The body of a request for ``op`` with keyword arguments ``args``."""
    return dumps({"cmd": cmd, "op": op, "args": args, "retry": retry})


def decode_request(data: bytes, allowed: frozenset[str]) -> Request:
    """The request in ``data`` whose ``op`` must be one of ``allowed``; ProtocolError otherwise."""
    body = loads(data)
    if not isinstance(body, dict):
        raise ProtocolError("a request is a JSON object")
    cmd, op, args = body.get("cmd"), body.get("op"), body.get("args", {})
    if not isinstance(cmd, str) or not isinstance(op, str) or not isinstance(args, dict):
        raise ProtocolError("a request has a string cmd, a string op and an args object")
    if op not in allowed:
        raise ProtocolError(f"unknown op {op[:40]!r}")
    return Request(cmd, op, args, body.get("retry") is True)


def encode_ok(result: Any) -> bytes:
    """A successful reply carrying ``result``."""
    return dumps({"ok": True, "result": result})


def encode_error(exc: BaseException) -> bytes:
    """A failed reply describing ``exc`` (an exchange error keeps its class, code and message)."""
    error: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)[:1000]}
    if isinstance(exc, ExchangeError):
        error["code"] = exc.code
        error["message"] = exc.message
        if isinstance(exc, OrderRejected):
            error["retry_after"] = exc.retry_after
            error["rate_limit"] = exc.rate_limit
    return dumps({"ok": False, "error": error})


def decode_reply(data: bytes) -> Any:
    """The result of a reply; raises the exception a failed reply describes (the exchange error of the
    same class, code and message, or :class:`RemoteFailure`), ProtocolError for a malformed reply."""
    body = loads(data)
    if not isinstance(body, dict) or not isinstance(body.get("ok"), bool):
        raise ProtocolError("a reply is a JSON object with a boolean ok")
    if body["ok"]:
        return body.get("result")
    error = body.get("error")
    if not isinstance(error, dict):
        raise ProtocolError("a failed reply has an error object")
    raise _exception(error)


def _exception(error: dict[str, Any]) -> Exception:
    message = str(error.get("message", ""))
    cls = _ERRORS.get(str(error.get("type")))
    code = error.get("code")
    if cls is None:
        return RemoteFailure(f"{error.get('type')}: {message}")
    if cls is OrderRejected:
        retry_after, rate_limit = error.get("retry_after"), error.get("rate_limit")
        return OrderRejected(
            message,
            code if isinstance(code, str) else None,
            retry_after=float(retry_after) if isinstance(retry_after, (int, float)) else None,
            rate_limit=rate_limit if isinstance(rate_limit, int) else None,
        )
    return cls(message, code if isinstance(code, str) else None)


def error_of(error: dict[str, Any]) -> Exception:
    """The exception a failed reply's ``error`` object describes (as :func:`decode_reply` raises it)."""
    return _exception(error)


def receipt_result(receipt: Receipt) -> dict[str, Any]:
    """A command's receipt as a reply result."""
    return {
        "position": receipt.position,
        "order_id": receipt.order_id,
        "order": receipt.order,
        "result": receipt.result,
    }


def receipt_from_result(result: Any) -> Receipt:
    """The receipt of a command's reply result (ProtocolError if it is not one)."""
    if not isinstance(result, dict) or not isinstance(result.get("position"), int):
        raise ProtocolError("a command's result is a receipt object")
    order, extra = result.get("order"), result.get("result")
    return Receipt(
        result["position"],
        result.get("order_id"),
        order if isinstance(order, dict) else None,
        extra if isinstance(extra, dict) else {},
    )


def encode_batch(position: int, messages: list[dict[str, Any]]) -> bytes:
    """The body of a market-data message: one durable command's journal ``position`` and its stream
    ``messages`` (the shapes of :mod:`manticore_matching.feed`)."""
    return dumps({"position": position, "messages": messages})


def decode_batch(data: bytes) -> tuple[int, list[dict[str, Any]]]:
    """``(position, messages)`` of a market-data message; ProtocolError if malformed."""
    body = loads(data)
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("position"), int)
        or not isinstance(body.get("messages"), list)
    ):
        raise ProtocolError("a market-data message has an integer position and a messages list")
    return body["position"], body["messages"]
