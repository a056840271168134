"""Build hook: with MANTICORE_MYPYC=1 the order book core is compiled with mypyc.

The pure-Python source stays the reference and works uncompiled; ``make compiled`` builds and tests the
compiled variant (see docs/benchmarks.md for what it buys).
"""

import os

from setuptools import setup

COMPILED_MODULES = [
    "src/manticore_orderbook/book.py",
    "src/manticore_orderbook/events.py",
    "src/manticore_orderbook/model.py",
    "src/manticore_orderbook/numbers.py",
    "src/manticore_orderbook/price_index.py",
    "src/manticore_orderbook/rules.py",
]

ext_modules = []
if os.environ.get("MANTICORE_MYPYC") == "1":
    from mypyc.build import mypycify

    ext_modules = mypycify(COMPILED_MODULES, opt_level="3")

setup(ext_modules=ext_modules)
