"""The built wheel carries the grammar and `py.typed`, knows its version from its metadata
and runs as `python -m subguard`: install it into a fresh venv and load a policy."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

POLICY = """package p

deny contains "drop is never allowed" if {
    some s in input.sql.statements
    s.kind == "drop"
}

default allow := true
"""

PROBE = """
import sys, subguard
policy = subguard.load_policy(sys.argv[1])
engine = subguard.Engine(policy)
print(subguard.__file__)
print(engine.check("DROP TABLE users").effect.value)
print(engine.check("SELECT 1").effect.value)
"""


def test_wheel_installs_into_a_fresh_venv_and_loads_a_policy(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(ROOT)],
        check=True,
    )
    (wheel,) = dist.glob("subguard-*.whl")
    env = tmp_path / "venv"
    venv.create(env, with_pip=False)
    site = next((env / "lib").glob("python*/site-packages"))
    # the wheel goes into the fresh venv; its dependencies come from this environment,
    # added after the venv's own site-packages so the installed wheel wins
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        check=True,
    )
    (site / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    policy = tmp_path / "policy.guard"
    policy.write_text(POLICY)
    result = subprocess.run(
        [str(env / "bin" / "python"), "-I", "-c", PROBE, str(policy)],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    module_file, dropped, selected = result.stdout.split()
    assert module_file.startswith(str(site))
    assert (site / "subguard" / "lang" / "grammar" / "subguard.lark").is_file()
    assert (dropped, selected) == ("deny", "allow")
    assert (site / "subguard" / "py.typed").is_file()
    from importlib.metadata import version

    ran = subprocess.run(
        [str(env / "bin" / "python"), "-I", "-m", "subguard", "--version"],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert ran.stdout.split()[-1] == version("subguard")
