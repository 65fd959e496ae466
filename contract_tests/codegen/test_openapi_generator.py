"""openapi.yaml through OpenAPI Generator 7.26.0, the generator most teams use for other languages.

The spec validates without flags, and python, typescript-fetch, go, java, csharp, rust and kotlin
generate from their committed configs (clients/openapi-generator/) with no warning but the
generator's own limitations, each explained in docs/other-languages.md. Every client has all three
operations, types both submits by `SubmitResult` and has one model per component schema, no more
(no per-request copy of `ImageSize`). Each is checked once per session: as `make clients` generated
it into build/clients/ when its inputs are unchanged since, else generated here, two at a time.
Compiling and running them is `tools/client_smoke.py`'s (`make clients`, `make test`): every one
but C#, for which no machine here has a .NET SDK.

Without Java or the CLI these tests skip; under CI (`CI` set) they fail, since `make setup`
installs the CLI and the machine has Java.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import tomllib
from pathlib import Path

import pytest
import yaml

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
    "kotlin": {
        "src/main/kotlin/ai/boogu/client/apis/StatusApi.kt": r"fun getRequestStatus\(",
        "src/main/kotlin/ai/boogu/client/apis/TextToImageApi.kt": r"fun submitTextToImage\(",
        "src/main/kotlin/ai/boogu/client/apis/ImageEditApi.kt": r"fun submitImageEdit\(",
    },
}
# How each client's text-to-image submit declares its typed result: `SubmitResult`, which parses both
# the 202 ticket and the 200 of sync mode (generators type an operation by its first 2xx answer).
SUBMIT_RESULT = {
    "python": ("boogu_openapi_client/api/text_to_image_api.py", r"\) -> SubmitResult:"),
    "typescript-fetch": (
        "src/apis/TextToImageApi.ts",
        r"async submitTextToImage\([^)]*\): Promise<SubmitResult>",
    ),
    "go": ("api_text_to_image.go", r"SubmitTextToImageExecute\([^)]*\) \(\*SubmitResult,"),
    "java": (
        "src/main/java/ai/boogu/client/api/TextToImageApi.java",
        r"public SubmitResult submitTextToImage\(",
    ),
    "csharp": ("src/Boogu.Client/Api/TextToImageApi.cs", r"IOk<Boogu\.Client\.Model\.SubmitResult\?>"),
    "rust": (
        "src/apis/text_to_image_api.rs",
        r"-> Result<models::SubmitResult, Error<SubmitTextToImageError>>",
    ),
    "kotlin": (
        "src/main/kotlin/ai/boogu/client/apis/TextToImageApi.kt",
        r"fun submitTextToImage\([^)]*\) : SubmitResult",
    ),
}
# Each client's model files.
MODEL_FILES = {
    "python": "boogu_openapi_client/models/*.py",
    "typescript-fetch": "src/models/*.ts",
    "go": "model_*.go",
    "java": "src/main/java/ai/boogu/client/model/*.java",
    "csharp": "src/Boogu.Client/Model/*.cs",
    "rust": "src/models/*.rs",
    "kotlin": "src/main/kotlin/ai/boogu/client/models/*.kt",
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
    """All seven languages, once for the session: the folders `make clients` generated from today's
    spec, config and generator (their record says so), the others generated here, in tmp."""
    require_generator()
    started = time.monotonic()
    reused = {language: openapi_generator.reusable(language) for language in LANGUAGES}
    missing = [language for language, found in reused.items() if found is None]
    results = openapi_generator.generate_all(missing, tmp_path_factory.mktemp("openapi-generator"))
    print(
        f"\nOpenAPI Generator: {len(results)} languages generated in {time.monotonic() - started:.1f} s, "
        f"{len(LANGUAGES) - len(missing)} reused from `make clients`"
    )
    return {
        **{language: found for language, found in reused.items() if found},
        **{r.language: r for r in results},
    }


def test_every_language_has_a_committed_config() -> None:
    assert set(LANGUAGES) <= set(openapi_generator.languages())


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


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_submit_is_typed_by_the_result_that_parses_200_and_202(
    generated: dict[str, openapi_generator.Generated], language: str
) -> None:
    path, pattern = SUBMIT_RESULT[language]
    assert re.search(pattern, (generated[language].output / path).read_text()), f"{language}: {path}"


def test_the_rust_crate_speaks_https_by_default(generated: dict[str, openapi_generator.Generated]) -> None:
    """The smoke program builds the crate without its default feature (the mock is plain HTTP); users
    of the https gateway get their TLS from that default."""
    features = tomllib.loads((generated["rust"].output / "Cargo.toml").read_text())["features"]
    assert "native-tls" in features["default"] and "reqwest/native-tls" in features["native-tls"], features


def model_names(folder: Path, pattern: str) -> set[str]:
    """Model names as `requeststatus`: file stems without case, `_` or Go's `model_` prefix."""
    stems = (path.stem.removeprefix("model_") for path in folder.glob(pattern))
    return {stem.replace("_", "").lower() for stem in stems} - {"__init__", "init", "mod", "index"}


@pytest.mark.parametrize("language", LANGUAGES)
def test_one_model_per_component_schema(
    generated: dict[str, openapi_generator.Generated], language: str
) -> None:
    """No generator invents a type of its own (such as `TextToImageRequestImageSize` beside `ImageSize`)."""
    schemas = yaml.safe_load(openapi_generator.SPEC.read_text())["components"]["schemas"]
    found = model_names(generated[language].output, MODEL_FILES[language])
    assert found == {name.lower() for name in schemas}, language


def test_the_kotlin_pom_pins_the_versions_of_the_generated_gradle_build(
    generated: dict[str, openapi_generator.Generated],
) -> None:
    """The generator writes only build.gradle; the smoke pom (Maven, as this project builds Kotlin)
    must build with what a Gradle user of the same generated client gets."""
    gradle = (generated["kotlin"].output / "build.gradle").read_text()
    pom = (ROOT / "clients" / "openapi-generator" / "smoke" / "kotlin" / "pom.xml").read_text()
    expected = {
        "kotlin": re.search(r"ext\.kotlin_version = '([^']+)'", gradle),
        "moshi": re.search(r'"com\.squareup\.moshi:moshi-kotlin:([^"]+)"', gradle),
        "okhttp": re.search(r'"com\.squareup\.okhttp3:okhttp:([^"]+)"', gradle),
    }
    for name, found in expected.items():
        assert found, f"build.gradle names no {name} version"
        assert f"<{name}.version>{found[1]}</{name}.version>" in pom, name
