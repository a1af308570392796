"""Build and load the relay's optional native row codec (``rowcodec.c``).

The relay's fast path (:mod:`.fast_encoder`) reads a pgoutput tuple and writes the row's JSON.
In Python that is most of the relay thread's time per event (BENCHMARKS.md, CDC relay);
``rowcodec.c`` does the same in C, byte for byte. It is optional: it is built when a C
compiler and the Python headers exist (``python3 bootstrap.py setup`` runs this module), and
without it the relay runs the pure-Python fast path, slower but the same events.

    python -m ingestion.cdc.rowcodec            # build it if missing or out of date
    python -m ingestion.cdc.rowcodec --quiet    # the same, silent when nothing was to do
    python -m ingestion.cdc.rowcodec --check    # say whether the relay will use it

The built module carries the SHA-256 of the source it was built from; :func:`load` refuses a
module built from another version of the source (a checkout moved on since the build), so the
relay never runs a stale codec.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import logging
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from types import ModuleType

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("rowcodec.c")
MODULE = "ingestion.cdc._rowcodec"
UP_TO_DATE = "native row codec up to date"


def target() -> Path:
    """Where the built module goes: beside its source, named for this Python's ABI."""
    return SOURCE.with_name("_rowcodec" + sysconfig.get_config_var("EXT_SUFFIX"))


def source_hash() -> str:
    return hashlib.sha256(SOURCE.read_bytes()).hexdigest()


def _load_file(path: Path) -> ModuleType | None:
    """The module built at ``path``, or None if it does not load."""
    spec = importlib.util.spec_from_file_location(MODULE, path)
    if spec is None or spec.loader is None:
        return None
    try:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except ImportError:
        return None
    return module


def _built_hash(path: Path) -> str | None:
    module = _load_file(path)
    return getattr(module, "SOURCE_HASH", None)


def compiler() -> list[str] | None:
    """The C compiler command ($CC, else Python's own CC, else cc/gcc/clang), or None."""
    for candidate in (os.environ.get("CC"), sysconfig.get_config_var("CC"), "cc", "gcc",
                      "clang"):
        if candidate:
            argv = shlex.split(candidate)
            if argv and shutil.which(argv[0]):
                return argv
    return None


def build(force: bool = False) -> tuple[bool, str]:
    """Build the module if it is missing or out of date; (usable, what happened)."""
    out = target()
    digest = source_hash()
    if not force and out.exists() and _built_hash(out) == digest:
        return True, f"{UP_TO_DATE} ({out.name})"
    cc = compiler()
    if cc is None:
        return False, ("no C compiler found (set CC, or on Debian `apt-get install gcc`): the "
                       "CDC relay uses its pure-Python fast path")
    include = sysconfig.get_paths()["include"]
    if not (Path(include) / "Python.h").exists():
        return False, (f"the Python headers are missing ({include}/Python.h; on Debian "
                       "`apt-get install python3-dev`): the CDC relay uses its pure-Python "
                       "fast path")
    with tempfile.TemporaryDirectory(prefix="rowcodec-") as tmp:
        built = Path(tmp) / out.name
        argv = [*cc, "-O2", "-shared", "-fPIC", "-Wall", f"-I{include}",
                f'-DROWCODEC_SOURCE_HASH="{digest}"', str(SOURCE), "-o", str(built)]
        result = subprocess.run(argv, capture_output=True, text=True)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
            return False, (f"building the native row codec failed ({' '.join(argv)}):\n{tail}\n"
                           "The CDC relay uses its pure-Python fast path.")
        if _built_hash(built) != digest:
            return False, "the native row codec was built but does not load; pure-Python path"
        os.replace(built, out)  # atomic: a running relay keeps the module it loaded
    return True, f"built the native row codec ({out.name}, {' '.join(cc)})"


_loaded: list[ModuleType | None] = []


def load() -> ModuleType | None:
    """The built module when it matches the source; None (with one warning) otherwise."""
    if _loaded:
        return _loaded[0]
    path = target()
    module = _load_file(path) if path.exists() else None
    if module is not None and getattr(module, "SOURCE_HASH", None) != source_hash():
        log.warning("the native row codec %s was built from another version of %s; the "
                    "relay uses its pure-Python fast path until `python3 bootstrap.py "
                    "setup` rebuilds it", path.name, SOURCE.name)
        module = None
    _loaded.append(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ingestion.cdc.rowcodec",
        description="Build the CDC relay's optional native row codec (rowcodec.c). Without "
                    "a C compiler the relay runs its pure-Python fast path instead; this "
                    "command then says so and exits 0.")
    parser.add_argument("--check", action="store_true",
                        help="only say whether the relay will use the native codec (exit 1 "
                             "if it will not)")
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    parser.add_argument("--quiet", action="store_true",
                        help="print nothing when the built module is already up to date")
    args = parser.parse_args(argv)
    if args.check:
        usable = load() is not None
        print("native row codec: " + ("in use" if usable else f"not in use: {target().name} is "
                                      "missing or stale; run `python3 bootstrap.py setup`"))
        return 0 if usable else 1
    _, message = build(force=args.force)
    if not (args.quiet and message.startswith(UP_TO_DATE)):
        print(message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
