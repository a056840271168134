"""manticore_risk: pre-trade risk checks and a ledger of available and held funds, settled exactly from
order book events. See docs/risk.md.

```python
risk = RiskManager(limits=RiskLimits(max_open_orders=100))
risk.register_market("BTC/USD", "BTC", "USD", book)        # book: OrderBook(..., number_format="str")
book.event_manager.subscribe_all(risk.on_event)
risk.deposit("alice", "USD", "10000")
decision = risk.check_order(user_id="alice", symbol="BTC/USD", side="buy", order_type="limit",
                            price=Decimal("30000"), quantity=Decimal("0.1"), now=clock())
if decision["approved"]:
    risk.reserve("o1", user_id="alice", symbol="BTC/USD", side="buy", order_type="limit",
                 price=Decimal("30000"), quantity=Decimal("0.1"), now=clock())
    book.add_order("buy", "30000", "0.1", order_id="o1", user_id="alice")  # release_unplaced if it raises
```
"""

from importlib.machinery import EXTENSION_SUFFIXES as _EXTENSION_SUFFIXES

from . import manager as _manager
from .decisions import CODES, Decision
from .errors import InsufficientFunds, RiskError
from .limits import RiskLimits
from .manager import RiskManager

__all__ = ["CODES", "COMPILED", "Decision", "InsufficientFunds", "RiskError", "RiskLimits", "RiskManager"]

#: True when the risk manager's modules are the mypyc-compiled extension modules (built with the order
#: book, see setup.py: ``MANTICORE_BUILD``), False for the pure-Python source.
COMPILED: bool = (_manager.__file__ or "").endswith(tuple(_EXTENSION_SUFFIXES))
