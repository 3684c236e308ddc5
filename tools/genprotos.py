"""Regenerate the committed Python stubs from protos/, or check that they are current.

    python tools/genprotos.py           # write stubs into src/
    python tools/genprotos.py --check   # exit 1 and list differences if src/ is stale

go-plugin's protos live in protos/plugin/ (their proto package is `plugin`), but are
generated as the Python package `pluginconf.goplugin` through a protoc virtual path,
so that no top-level `plugin` module is installed. Wire names are unaffected. Likewise the
conformance control protocol (protos/pluginconf/conformance/v1, proto package
`pluginconf.conformance.v1`) is generated as `pluginconf.control`: the Python package
`pluginconf.conformance` holds the cases.
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
SRC = ROOT / "src"
GENERATED_DIRS = ("pluginconf/v1", "pluginconf/goplugin", "pluginconf/control")
CONTROL = PROTOS / "pluginconf" / "conformance" / "v1"
OUTPUTS = ("--python_out", "--grpc_python_out", "--mypy_out", "--mypy_grpc_out")


def _run_protoc(include_args: list[str], files: list[str], out: Path) -> None:
    well_known = str(resources.files("grpc_tools") / "_proto")
    bindir = Path(sys.executable).parent
    args = ["protoc", f"-I{well_known}", *include_args]
    args += [
        f"--plugin={name}={bindir / name}" for name in ("protoc-gen-mypy", "protoc-gen-mypy_grpc")
    ]
    args += [f"{flag}={out}" for flag in OUTPUTS]
    args += files
    if protoc.main(args) != 0:
        raise SystemExit(f"protoc failed: {' '.join(args)}")


def generate(out: Path) -> None:
    ours = sorted(
        str(p.relative_to(PROTOS))
        for p in (PROTOS / "pluginconf").rglob("*.proto")
        if p.parent != CONTROL
    )
    _run_protoc([f"-I{PROTOS}"], ours, out)
    control = sorted(f"pluginconf/control/{p.name}" for p in CONTROL.glob("*.proto"))
    _run_protoc([f"-Ipluginconf/control={CONTROL}", f"-I{PROTOS}"], control, out)
    goplugin = sorted(f"pluginconf/goplugin/{p.name}" for p in (PROTOS / "plugin").glob("*.proto"))
    _run_protoc([f"-Ipluginconf/goplugin={PROTOS / 'plugin'}"], goplugin, out)
    for rel in GENERATED_DIRS:
        (out / rel / "__init__.py").touch()


def _generated_files(base: Path) -> set[str]:
    found: set[str] = set()
    for rel in GENERATED_DIRS:
        d = base / rel
        if d.is_dir():
            found |= {str(p.relative_to(base)) for p in d.iterdir() if p.is_file()}
    return found


def check() -> list[str]:
    """Return the generated files that differ between a fresh run and src/."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        generate(fresh)
        want, have = _generated_files(fresh), _generated_files(SRC)
        problems = [f"missing from src/: {f}" for f in sorted(want - have)]
        problems += [f"not generated from protos/: {f}" for f in sorted(have - want)]
        problems += [
            f"stale: {f}"
            for f in sorted(want & have)
            if not filecmp.cmp(fresh / f, SRC / f, shallow=False)
        ]
        return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    if parser.parse_args().check:
        problems = check()
        for p in problems:
            print(p)
        if problems:
            print("run: python tools/genprotos.py", file=sys.stderr)
        return 1 if problems else 0
    generate(SRC)
    return 0


if __name__ == "__main__":
    sys.exit(main())
