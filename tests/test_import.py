import subprocess
import sys

HEAVY = ["torch", "numba", "pyoperon", "pysr", "cvxpy", "pysindy"]


def test_import_symqp_is_light():
    code = (
        "import sys, symqp, symqp.systems, symqp.data, symqp.library, symqp.backends, "
        "symqp.result, symqp.analysis, symqp.decompose, symqp.cli; "
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
