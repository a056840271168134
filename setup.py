"""Build hook: the order book (``manticore_orderbook``) and the risk manager (``manticore_risk``) are
compiled with mypyc whenever they can be.

``MANTICORE_BUILD`` chooses the build of ``pip install .``, ``pip wheel .`` and ``python -m build``:

* ``auto`` (the default): compiled when mypyc (from ``mypy``, a build requirement) can run and a C
  compiler builds against this Python's headers; otherwise the pure-Python source, announced by one
  warning line on stderr (pip shows build output with ``pip install -v``);
* ``compiled``: compiled, or the build fails with the reason;
* ``pure``: the pure-Python source only.

Editable installs (``pip install -e .``) always use the pure source, so an edited ``.py`` file is what
runs: no extension module is built next to the sources. ``MANTICORE_BUILD=compiled`` with an editable
install is an error. The ``.py`` sources are installed with the extension modules in every build.

The compiled modules are every module of the order book except :data:`INTERPRETED`
(:func:`compiled_modules`), and every module of each package of :data:`ALSO_COMPILED` except the ones
named there (:func:`compiled_modules_of`); all of them are compiled together in one mypyc run, so calls
between them (risk calling the book) are native calls. ``tests/orderbook/test_build.py`` and
``tests/risk/test_build.py`` load this file to check the installed build against the same lists, which
is why ``setup()`` only runs when the file is executed.
"""

from __future__ import annotations

import os
import platform
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PACKAGE = "manticore_orderbook"
PACKAGE_DIR = Path("src") / PACKAGE
MODES = ("auto", "compiled", "pure")

#: Modules of the package that stay interpreted, and why.
INTERPRETED = {
    "__init__": "the package entry point: re-exports the public names and reports COMPILED",
    "demo": "a script (python -m manticore_orderbook.demo), not library code",
    "errors": "exceptions that derive from two builtin exceptions (ValueError, KeyError): mypyc cannot "
    "compile that",
}

#: setup.py commands that make an editable install.
#: Further packages compiled in the same build (one mypyc run with the order book), each with its modules
#: that stay interpreted and why.
ALSO_COMPILED: dict[str, dict[str, str]] = {
    "manticore_risk": {
        "__init__": "the package entry point: re-exports the public names and reports COMPILED",
        "errors": "exceptions that callers catch and may subclass: a compiled class cannot be subclassed "
        "by interpreted code",
        "limits": "a frozen dataclass that takes Decimal, int or str limits and converts them in "
        "__post_init__: compiled, its fields' declared types (Decimal) would refuse an int or a str",
    },
}

_EDITABLE_COMMANDS = frozenset({"editable_wheel", "develop"})
#: setup.py commands that build the package; the others (egg_info, dist_info, sdist: what pip runs to
#: read metadata) do not need the extensions generated, which takes mypyc a type-check of the package.
_BUILD_COMMANDS = frozenset({"build", "build_ext", "bdist_wheel", "bdist", "bdist_egg", "install"})
_PREFIX = "manticore build:"


def compiled_modules() -> list[str]:
    """Names (without the package) of the modules mypyc compiles: all but :data:`INTERPRETED`, sorted."""
    names = (path.stem for path in (HERE / PACKAGE_DIR).glob("*.py"))
    return sorted(name for name in names if name not in INTERPRETED)


def compiled_modules_of(package: str) -> list[str]:
    """Names (without the package) of the modules of ``package`` (the order book or a key of
    :data:`ALSO_COMPILED`) that mypyc compiles, sorted."""
    interpreted = INTERPRETED if package == PACKAGE else ALSO_COMPILED[package]
    names = (path.stem for path in (HERE / "src" / package).glob("*.py"))
    return sorted(name for name in names if name not in interpreted)


def compiled_paths() -> list[str]:
    """The source paths (relative to this file) of every module the compiled build compiles."""
    return [
        str(Path("src") / package / f"{name}.py")
        for package in (PACKAGE, *ALSO_COMPILED)
        for name in compiled_modules_of(package)
    ]


def build_mode() -> str:
    """``MANTICORE_BUILD`` (default ``auto``); an unknown value stops the build."""
    mode = os.environ.get("MANTICORE_BUILD", "").strip().lower() or "auto"
    if mode not in MODES:
        raise SystemExit(f"{_PREFIX} MANTICORE_BUILD={mode!r}: expected one of {', '.join(MODES)}")
    return mode


def _compiler_problem() -> str | None:
    """None when a C compiler builds an object against this Python's headers, else why it does not."""
    import setuptools  # noqa: F401  (first: makes ``distutils`` setuptools' own copy)

    # isort: split
    from distutils.ccompiler import new_compiler
    from distutils.sysconfig import customize_compiler

    if platform.python_implementation() != "CPython":
        return f"mypyc needs CPython, not {platform.python_implementation()}"
    paths = sysconfig.get_paths()
    include_dirs = list(dict.fromkeys([paths["include"], paths["platinclude"]]))
    if not any((Path(d) / "Python.h").exists() for d in include_dirs):
        return f"the Python headers (Python.h) are not installed (looked in {', '.join(include_dirs)})"
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "probe.c"
        source.write_text("#include <Python.h>\nint manticore_probe(void) { return Py_IsInitialized(); }\n")
        try:
            compiler: Any = new_compiler()
            customize_compiler(compiler)
            compiler.compile([str(source)], output_dir=tmp, include_dirs=include_dirs)
        except Exception as exc:  # any failure means: no usable compiler
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return f"no working C compiler ({first})"
    return None


def _mypyc_problem() -> str | None:
    try:
        import mypyc.build  # noqa: F401
    except ImportError as exc:
        return f"mypyc is not importable in the build environment ({exc})"
    return None


_decision: list[bool] = []


def _building() -> bool:
    """Whether this setup.py run builds the package (not only its metadata, which pip asks for first)."""
    return bool(_BUILD_COMMANDS.intersection(sys.argv[1:]))


def compile_now() -> bool:
    """Whether this build compiles the order book (decided once per process; see the module docstring).

    ``auto`` prints one warning line when it falls back to the pure source; ``compiled`` raises
    ``SystemExit`` with the reason instead.
    """
    if _decision:
        return _decision[0]
    mode = build_mode()
    editable = bool(_EDITABLE_COMMANDS.intersection(sys.argv[1:]))
    if editable and mode == "compiled":
        raise SystemExit(
            f"{_PREFIX} an editable install always uses the pure-Python source (the sources you edit are "
            "what runs); install without -e for the compiled build"
        )
    compiled = False
    if mode != "pure" and not editable:
        problem = _mypyc_problem() or _compiler_problem()
        if problem is None:
            compiled = True
        elif mode == "compiled":
            raise SystemExit(f"{_PREFIX} MANTICORE_BUILD=compiled but {problem}")
        else:
            _fall_back(problem)
    _decision.append(compiled)
    return compiled


def _fall_back(problem: str) -> None:
    print(
        f"{_PREFIX} WARNING: installing the pure-Python order book (several times slower): {problem}. "
        "Set MANTICORE_BUILD=compiled to make this an error, MANTICORE_BUILD=pure to silence it.",
        file=sys.stderr,
        flush=True,
    )


def main() -> None:
    """Run ``setup()`` with the mypyc hooks."""
    from setuptools import Distribution, setup
    from setuptools.command.build_ext import build_ext

    class MaybeCompiled(Distribution):
        """A distribution that has extension modules exactly when the order book is compiled."""

        def has_ext_modules(self) -> bool:
            return _building() and compile_now()

    class BuildExt(build_ext):
        """Generates the mypyc extensions when the build compiles; builds nothing in place or editable."""

        def finalize_options(self) -> None:
            in_place = bool(self.inplace or getattr(self, "editable_mode", False))
            if _building() and not in_place and compile_now():
                from mypyc.build import mypycify

                paths = compiled_paths()
                packages = ", ".join((PACKAGE, *ALSO_COMPILED))
                print(f"{_PREFIX} compiling {len(paths)} modules of {packages} with mypyc", flush=True)
                try:
                    self.distribution.ext_modules = mypycify(paths, opt_level="3")
                except (Exception, SystemExit) as exc:
                    self._give_up(f"mypyc failed: {exc}")
            else:
                self.distribution.ext_modules = []
            super().finalize_options()

        def run(self) -> None:
            try:
                super().run()
            except Exception as exc:
                for ext in self.extensions:
                    Path(self.get_ext_fullpath(ext.name)).unlink(missing_ok=True)
                self._give_up(f"compiling failed: {exc}")
                self.extensions = []

        def _give_up(self, problem: str) -> None:
            if build_mode() == "compiled":
                raise SystemExit(f"{_PREFIX} MANTICORE_BUILD=compiled but {problem}")
            _fall_back(problem)
            self.distribution.ext_modules = []

    if _EDITABLE_COMMANDS.intersection(sys.argv[1:]):
        compile_now()  # always pure; refuses MANTICORE_BUILD=compiled
    setup(distclass=MaybeCompiled, cmdclass={"build_ext": BuildExt})


if __name__ == "__main__":
    main()
