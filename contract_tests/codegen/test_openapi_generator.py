"""openapi.yaml through OpenAPI Generator 7.26.0, the generator most teams use for other languages.

The spec validates without flags, and python, typescript-fetch, go, java, csharp and rust generate
from their committed configs (clients/openapi-generator/) with no warning but the generator's own
limitations, each explained in the README; every client has all three operations, the status
operation among them. All six are generated once per session, two at a time (about 20 s here);
none is compiled (`make clients` builds and runs the python and typescript-fetch ones).

Without Java or the CLI these tests skip; under CI (`CI` set) they fail, since `make setup`
installs the CLI and the machine has Java.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest

from tools import openapi_generator

ROOT = Path(__file__).resolve().parent.parent.parent


README = (ROOT / "README.md").read_text()
OTHER_LANGUAGES_PAGE = ROOT / "docs" / "other-languages.md"

# Warnings that any spec gets from these generators (a one-operation spec reproduces each);
# "Clients in other languages" (docs/other-languages.md, or the README's section) explains every one.
KNOWN_WARNINGS = {
    "*": ["OpenAPI 3.1 support is still in beta"],
    "python": ["Failed to get the schema name: null"],
    "java": ["Ignoring complex example on request body"],
    "rust": ["ApplicationJson cannot be used as a model name. Renamed to ApplicationSlashJson"],
}

# Where each client defines each operation, in its language's naming.
OPERATIONS = {
    "python": {
        "boogu_openapi_client/api/status_api.py": r"def get_request_status\(",
        "boogu_openapi_client/api/text_to_image_api.py": r"def submit_text_to_image\(",
        "boogu_openapi_client/api/image_edit_api.py": r"def submit_image_edit\(",
    },
    "typescript-fetch": {
        "src/apis/StatusApi.ts": r"async getRequestStatus\(",
        "src/apis/TextToImageApi.ts": r"async submitTextToImage\(",
        "src/apis/ImageEditApi.ts": r"async submitImageEdit\(",
    },
    "go": {
        "api_status.go": r"func \(a \*StatusAPIService\) GetRequestStatus\(",
        "api_text_to_image.go": r"func \(a \*TextToImageAPIService\) SubmitTextToImage\(",
        "api_image_edit.go": r"func \(a \*ImageEditAPIService\) SubmitImageEdit\(",
    },
    "java": {
        "src/main/java/ai/boogu/client/api/StatusApi.java": r"public RequestStatus getRequestStatus\(",
        "src/main/java/ai/boogu/client/api/TextToImageApi.java": r" submitTextToImage\(",
        "src/main/java/ai/boogu/client/api/ImageEditApi.java": r" submitImageEdit\(",
    },
    "csharp": {
        "src/Boogu.Client/Api/StatusApi.cs": r"GetRequestStatusAsync\(",
        "src/Boogu.Client/Api/TextToImageApi.cs": r"SubmitTextToImageAsync\(",
        "src/Boogu.Client/Api/ImageEditApi.cs": r"SubmitImageEditAsync\(",
    },
    "rust": {
        "src/apis/status_api.rs": r"pub async fn get_request_status\(",
        "src/apis/text_to_image_api.rs": r"pub async fn submit_text_to_image\(",
        "src/apis/image_edit_api.rs": r"pub async fn submit_image_edit\(",
    },
}
LANGUAGES = list(OPERATIONS)


def require_generator() -> None:
    found = {"java": shutil.which("java"), "openapi-generator-cli": openapi_generator.find_cli()}
    missing = [name for name, path in found.items() if path is None]
    if not missing:
        return
    reason = f"{' and '.join(missing)} not found: install Java 11+ and run `make setup`"
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: missing is a failure there)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, openapi_generator.Generated]:
    """All six languages, generated once for the session."""
    require_generator()
    started = time.monotonic()
    results = openapi_generator.generate_all(LANGUAGES, tmp_path_factory.mktemp("openapi-generator"))
    print(f"\nOpenAPI Generator: {len(results)} languages in {time.monotonic() - started:.1f} s")
    return {result.language: result for result in results}


def test_every_language_has_a_committed_config() -> None:
    assert set(LANGUAGES) <= set(openapi_generator.languages())
    assert "kotlin" in openapi_generator.languages()  # documented in the README, not generated here


def test_the_spec_validates_without_flags() -> None:
    require_generator()
    log = openapi_generator.validate()
    assert "No validation issues detected." in log, log


@pytest.mark.parametrize("language", LANGUAGES)
def test_generation_warns_only_of_documented_generator_limitations(
    generated: dict[str, openapi_generator.Generated], language: str
) -> None:
    allowed = KNOWN_WARNINGS["*"] + KNOWN_WARNINGS.get(language, [])
    unexpected = [w for w in generated[language].warnings if not any(w.startswith(a) for a in allowed)]
    assert not unexpected, f"{language}: warnings about the spec: {unexpected}"


def other_languages_docs() -> str:
    """The "Clients in other languages" text: its own page under docs/, or else the README's section."""
    if OTHER_LANGUAGES_PAGE.is_file():
        return OTHER_LANGUAGES_PAGE.read_text()
    return README.split("## Clients in other languages", 1)[-1].split("\n## ", 1)[0]


@pytest.mark.parametrize("warning", sorted({w for ws in KNOWN_WARNINGS.values() for w in ws}))
def test_each_tolerated_warning_is_explained_in_the_readme(warning: str) -> None:
    assert warning in other_languages_docs()


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_client_has_all_three_operations(
    generated: dict[str, openapi_generator.Generated], language: str
) -> None:
    missing = [
        f"{path}: {pattern}"
        for path, pattern in OPERATIONS[language].items()
        if not (generated[language].output / path).is_file()
        or not re.search(pattern, (generated[language].output / path).read_text())
    ]
    assert not missing, f"{language} client lacks: {missing}"
