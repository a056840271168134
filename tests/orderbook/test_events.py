"""The EventManager: subscriptions, delivery order and failure isolation (DESIGN.md section 3.3)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from manticore_orderbook import EventManager, EventType

from .support import Recorder


def test_handlers_run_in_subscription_order() -> None:
    manager = EventManager()
    calls: list[str] = []
    manager.subscribe(EventType.ORDER_ADDED, lambda e, d: calls.append("first"))
    manager.subscribe("order_added", lambda e, d: calls.append("second"))
    manager.subscribe("ORDER_ADDED", lambda e, d: calls.append("third"))
    manager.publish(EventType.ORDER_ADDED, {"x": 1})
    assert calls == ["first", "second", "third"]


def test_handler_receives_event_type_and_data() -> None:
    manager = EventManager()
    recorder = Recorder()
    manager.subscribe(EventType.TRADE_EXECUTED, recorder)
    manager.publish("trade_executed", {"trade_id": "t1"})
    assert recorder.events == [(EventType.TRADE_EXECUTED, {"trade_id": "t1"})]


def test_only_subscribed_types_are_delivered() -> None:
    manager = EventManager()
    recorder = Recorder()
    manager.subscribe(EventType.ORDER_FILLED, recorder)
    manager.publish(EventType.ORDER_ADDED, {})
    assert recorder.events == []


def test_subscribe_all_receives_every_type() -> None:
    manager = EventManager()
    recorder = Recorder()
    manager.subscribe_all(recorder)
    for event_type in EventType:
        manager.publish(event_type, {})
    assert recorder.types() == list(EventType)


def test_unsubscribe_removes_one_subscription() -> None:
    manager = EventManager()
    recorder = Recorder()
    manager.subscribe(EventType.ORDER_ADDED, recorder)
    manager.subscribe(EventType.ORDER_ADDED, recorder)
    assert manager.subscriber_count(EventType.ORDER_ADDED) == 2
    assert manager.unsubscribe(EventType.ORDER_ADDED, recorder) is True
    manager.publish(EventType.ORDER_ADDED, {})
    assert len(recorder.events) == 1
    assert manager.unsubscribe(EventType.ORDER_ADDED, recorder) is True
    assert manager.unsubscribe(EventType.ORDER_ADDED, recorder) is False
    assert not manager.has_subscribers(EventType.ORDER_ADDED)


def test_unsubscribe_all_counts_removed_subscriptions() -> None:
    manager = EventManager()
    recorder = Recorder()
    manager.subscribe_all(recorder)
    assert manager.subscriber_count() == len(EventType)
    assert manager.unsubscribe_all(recorder) == len(EventType)
    assert manager.subscriber_count() == 0


def test_unknown_event_type_is_a_value_error() -> None:
    manager = EventManager()
    with pytest.raises(ValueError):
        manager.subscribe("order_exploded", lambda e, d: None)
    with pytest.raises(ValueError):
        manager.publish("nope", {})


def test_non_callable_handler_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        EventManager().subscribe(EventType.ORDER_ADDED, "not callable")  # type: ignore[arg-type]


def test_failing_handler_does_not_stop_the_others_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    manager = EventManager()
    recorder = Recorder()

    def boom(event_type: EventType, data: dict[str, Any]) -> None:
        raise RuntimeError("handler broke")

    manager.subscribe(EventType.ORDER_ADDED, boom)
    manager.subscribe(EventType.ORDER_ADDED, recorder)
    with caplog.at_level(logging.ERROR, logger="manticore_orderbook"):
        failures = manager.publish(EventType.ORDER_ADDED, {"order_id": "a"})
    assert failures == 1
    assert recorder.events == [(EventType.ORDER_ADDED, {"order_id": "a"})]
    assert any("handler broke" in (r.exc_text or r.getMessage()) or r.exc_info for r in caplog.records)


def test_subscribing_during_delivery_does_not_disturb_the_current_delivery() -> None:
    manager = EventManager()
    calls: list[str] = []

    def late(event_type: EventType, data: dict[str, Any]) -> None:
        calls.append("late")

    def subscriber(event_type: EventType, data: dict[str, Any]) -> None:
        calls.append("subscriber")
        manager.subscribe(EventType.ORDER_ADDED, late)

    manager.subscribe(EventType.ORDER_ADDED, subscriber)
    manager.publish(EventType.ORDER_ADDED, {})
    assert calls == ["subscriber"]
    manager.publish(EventType.ORDER_ADDED, {})
    assert calls == ["subscriber", "subscriber", "late"]


def test_event_type_values_are_stable_strings() -> None:
    assert {e.name for e in EventType} == {
        "ORDER_ADDED",
        "ORDER_MODIFIED",
        "ORDER_CANCELLED",
        "ORDER_FILLED",
        "ORDER_EXPIRED",
        "ORDER_TRIGGERED",
        "TRADE_EXECUTED",
        "PRICE_LEVEL_ADDED",
        "PRICE_LEVEL_CHANGED",
        "PRICE_LEVEL_REMOVED",
        "BOOK_CLEARED",
        "ERROR",
    }
