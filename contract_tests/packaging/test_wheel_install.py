"""The toolkit as a third party gets it: both wheels built, installed into a fresh venv outside the
repository, then used from there: the client alone, then the `[mock]` extra with `/docs`, `/openapi.yaml`,
`boogu generate` against `python -m mock_gateway`, and the pytest plugin in a project of its own.

Offline once primed: the wheels install with `--no-index` from the two built wheels and the
dependencies in build/wheelhouse/ (`wheelhouse.filled`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from contract_tests.packaging import wheelhouse
from contract_tests.packaging.test_docs import require
from mock_gateway.testing import gateway_process

ROOT = Path(__file__).resolve().parent.parent.parent
API_KEY = "test-key"
# Run in the fresh venv: which distribution installed each of the import packages.
OWNERS = """
import json
from importlib.metadata import distributions
owners = {}
for dist in distributions():
    for file in dist.files or []:
        top = file.parts[0]
        if top in ("boogu", "boogu_image_client", "mock_gateway") and file.suffix == ".py":
            owners.setdefault(top, set()).add(dist.metadata["Name"])
print(json.dumps({top: sorted(names) for top, names in owners.items()}))
"""
CONSUMER_TEST = """
from boogu_image_client.api.status import get_request_status
from boogu_image_client.api.text_to_image import submit_text_to_image
from boogu_image_client.models import QueuedRequest, RequestStatus, TextToImageRequest


def test_submit_then_poll(boogu_client, mock_gateway):
    queued = submit_text_to_image.sync(client=boogu_client, body=TextToImageRequest(prompt="a fox"))
    assert isinstance(queued, QueuedRequest)
    mock_gateway.advance(60)
    status = get_request_status.sync(queued.request_id, client=boogu_client)
    assert isinstance(status, RequestStatus) and status.status == "COMPLETED"
"""


def run(*command: str | Path, cwd: Path, timeout: float = 120, check: bool = True) -> str:
    """Run a command with none of this run's Python settings; the project venv's tools first on PATH
    (uv_build looks its binary up there)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "VIRTUAL_ENV", "PYTHONPATH"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(
        [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    if check:
        assert result.returncode == 0, (
            f"{command} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result.stdout + result.stderr


class Venv:
    """A venv without pip of its own: the project venv's pip installs into it (`pip --python`)."""

    def __init__(self, path: Path, *wheels: Path) -> None:
        """Installs offline, from the folders of `wheels` only."""
        self.path, self.wheels = path, wheels
        run(sys.executable, "-m", "venv", "--without-pip", path, cwd=path.parent)
        self.python = path / "bin" / "python"

    def install(self, *requirements: str) -> None:
        # --no-compile: bytecode for every installed module cost seconds of CPU in a venv used once.
        command = [sys.executable, "-m", "pip", "--python", str(self.python), "install", "--quiet"]
        command += ["--no-compile", "--no-index", *(f"--find-links={folder}" for folder in self.wheels)]
        run(*command, *requirements, cwd=ROOT, timeout=300)

    def bin(self, name: str) -> Path:
        return self.path / "bin" / name


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two wheels, built with the project venv's backends (hatchling, uv_build), no download."""
    docs_buildable = (ROOT / "build" / "docs" / "index.html").is_file() or shutil.which("npm") is not None
    require(docs_buildable and (ROOT / "node_modules").is_dir(), "node_modules is missing: run `make setup`")
    out = tmp_path_factory.mktemp("dist")
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
    run(*command, "--no-index", "--wheel-dir", out, ROOT / "generated", ROOT, cwd=ROOT, timeout=300)
    return out


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, dist: Path) -> Venv:
    return Venv(tmp_path_factory.mktemp("user") / "venv", dist, wheelhouse.filled())


@pytest.fixture
def gateway(venv: Venv, tmp_path: Path) -> Iterator[str]:
    """`python -m mock_gateway` from the fresh venv, started outside the repository; yields its URL."""
    with gateway_process("--speed", "100", python=venv.python, cwd=tmp_path, timeout=30) as url:
        yield url


def test_the_toolkit_wheel_packs_its_data_and_not_the_generated_client(dist: Path) -> None:
    (wheel,) = dist.glob("boogu_image_toolkit-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for packed in (
        "boogu_contract/py.typed",
        "mock_gateway/py.typed",
        "boogu/py.typed",
        "boogu_contract/openapi.yaml",
    ):
        assert packed in names
    assert "boogu_contract/docs/index.html" in names
    assert not [name for name in names if name.startswith("boogu_image_client/")]
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("/METADATA"))).decode()
    assert "Requires-Dist: boogu-image-client" in metadata
    assert "Provides-Extra: mock" in metadata


def test_the_base_install_is_the_client_alone(venv: Venv, tmp_path: Path) -> None:
    venv.install("boogu-image-toolkit", "pytest")
    run(venv.python, "-c", "import boogu, boogu_image_client; from boogu import Boogu", cwd=tmp_path)
    assert "No module named 'starlette'" in run(
        venv.python, "-c", "import starlette", cwd=tmp_path, check=False
    )
    refused = run(venv.python, "-m", "mock_gateway", cwd=tmp_path, check=False)
    assert "boogu-image-toolkit[mock]" in refused
    # The plugin loads in every pytest run, [mock] or not; its fixtures say what is missing.
    (tmp_path / "test_consumer.py").write_text(CONSUMER_TEST)
    output = run(venv.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=tmp_path, check=False)
    assert "1 error" in output and "boogu-image-toolkit[mock]" in output, output
    # `boogu batch` checks its lines against the packaged openapi.yaml before anything is sent.
    (tmp_path / "jobs.jsonl").write_text('{"prompt": "x", "num_images": 9}\n')
    batch: list[str | Path] = [
        venv.path / "bin" / "boogu",
        "batch",
        "jobs.jsonl",
        "--base-url",
        "http://127.0.0.1:9",
    ]
    refused = run(*batch, "--api-key", "k", "--out", "out", cwd=tmp_path, check=False)
    assert "line 1: num_images: 9 is greater than the maximum of 4" in refused, refused
    owners = json.loads(run(venv.python, "-c", OWNERS, cwd=tmp_path))
    assert owners == {
        "boogu": ["boogu-image-toolkit"],
        "boogu_image_client": ["boogu-image-client"],
        "mock_gateway": ["boogu-image-toolkit"],
    }


def test_the_mock_extra_serves_docs_and_spec_and_a_full_generate(
    venv: Venv, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    venv.install("boogu-image-toolkit[mock]", "pytest")
    run(sys.executable, "-m", "pip", "--python", venv.python, "check", cwd=tmp_path)
    url = request.getfixturevalue("gateway")

    docs = httpx.get(f"{url}/docs", timeout=10)
    assert docs.status_code == 200 and docs.headers["content-type"] == "text/html; charset=utf-8"
    assert "<title>Boogu Image API</title>" in docs.text and '<script src="http' not in docs.text
    spec = httpx.get(f"{url}/openapi.yaml", timeout=10)
    assert spec.status_code == 200 and spec.content == (ROOT / "openapi.yaml").read_bytes()

    out = tmp_path / "images"
    printed = run(
        venv.bin("boogu"),
        "generate",
        "a red fox",
        "--base-url",
        url,
        "--api-key",
        API_KEY,
        "--out",
        out,
        "-q",
        cwd=tmp_path,
    )
    files = sorted(out.iterdir())
    assert len(files) == 1 and files[0].read_bytes()[:3] == b"\xff\xd8\xff", printed  # a JPEG


def test_the_pytest_plugin_in_a_project_of_its_own(venv: Venv, tmp_path: Path) -> None:
    venv.install("boogu-image-toolkit[mock]", "pytest")
    (tmp_path / "test_consumer.py").write_text(CONSUMER_TEST)
    output = run(venv.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=tmp_path)
    assert "1 passed" in output
