"""Settings: where the shipped files are found, and errors that never repeat a secret."""

from __future__ import annotations

import os
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

from eventrules.errors import ConfigurationError
from eventrules.settings import Settings, find_project_file

REPO_ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec_Sup3rS3cretValue"
PASSWORD = "kafka-P4ssw0rd-never-shown"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("EVENTRULES_"):
            monkeypatch.delenv(name)


# --- shipped files --------------------------------------------------------------------------


def test_shipped_files_come_from_the_package_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A folder that merely looks like ours, where a user happens to run the CLI.
    (tmp_path / "topics").mkdir()
    (tmp_path / "config" / "templates").mkdir(parents=True)
    (tmp_path / "config" / "triggers.yaml").write_text("triggers: []\n")
    monkeypatch.chdir(tmp_path)
    # This test runs from the source tree (an editable install): the repository's copies.
    assert find_project_file("topics") == REPO_ROOT / "topics"
    assert find_project_file("config/triggers.yaml") == REPO_ROOT / "config" / "triggers.yaml"
    assert find_project_file("config/templates") == REPO_ROOT / "config" / "templates"
    assert find_project_file("kafka/pom.xml") == REPO_ROOT / "kafka" / "pom.xml"
    assert find_project_file("no/such/file") is None
    settings = Settings()
    assert settings.resolved_topics_dir() == REPO_ROOT / "topics"
    assert settings.resolved_templates_dir() == REPO_ROOT / "config" / "templates"


def test_explicit_folders_override_the_shipped_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENTRULES_TOPICS_DIR", str(tmp_path / "my-topics"))
    monkeypatch.setenv("EVENTRULES_TEMPLATES_DIR", str(tmp_path / "my-templates"))
    (tmp_path / "my-topics").mkdir()
    (tmp_path / "my-templates").mkdir()
    settings = Settings()
    assert settings.resolved_topics_dir() == tmp_path / "my-topics"
    assert settings.resolved_templates_dir() == tmp_path / "my-templates"


def test_an_explicit_folder_that_does_not_exist_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENTRULES_TOPICS_DIR", str(tmp_path / "missing"))
    with pytest.raises(
        ConfigurationError, match=r"EVENTRULES_TOPICS_DIR=.*missing is not a folder"
    ):
        Settings().resolved_topics_dir()


# --- secrets never echoed -------------------------------------------------------------------

WRONG_WEBHOOK_SECRETS = [
    pytest.param(f'["{SECRET}"]', "a list instead of an object", id="list"),
    pytest.param(f"crm={SECRET}", "not JSON", id="not-json"),
    pytest.param(f'{{"crm": {{"key": "{SECRET}"}}}}', "a nested object", id="nested"),
    pytest.param(f'{{"crm": ["{SECRET}"]}}', "a list as the value", id="list-value"),
    pytest.param('{"crm": 987654321123}', "a number", id="number"),
]


def _everything_said(error: BaseException) -> str:
    """What a user or a log could see of an error: message, repr and the full traceback."""
    return "\n".join([str(error), repr(error), *traceback.format_exception(error)])


@pytest.mark.parametrize(("value", "shape"), WRONG_WEBHOOK_SECRETS)
def test_wrongly_shaped_webhook_secrets_are_named_but_never_echoed(
    value: str, shape: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENTRULES_WEBHOOK_SECRETS", value)
    with pytest.raises(ConfigurationError) as raised:
        Settings()
    said = _everything_said(raised.value)
    assert "webhook_secrets" in said.lower(), shape
    for secret in (SECRET, "987654321123"):
        assert secret not in said, shape


@pytest.mark.parametrize(
    "password",
    [[PASSWORD], {"value": PASSWORD}, (PASSWORD, PASSWORD)],
    ids=["list", "dict", "tuple"],
)
def test_a_wrongly_shaped_sasl_password_is_never_echoed(password: object) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings(sasl_password=password)  # type: ignore[arg-type]
    said = _everything_said(raised.value)
    assert "EVENTRULES_SASL_PASSWORD" in said
    assert PASSWORD not in said


def test_secrets_set_beside_an_invalid_setting_are_never_echoed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EVENTRULES_SASL_PASSWORD", PASSWORD)
    monkeypatch.setenv("EVENTRULES_WEBHOOK_SECRETS", f'{{"crm": "{SECRET}"}}')
    monkeypatch.setenv("EVENTRULES_WEB_PORT", "not-a-port")
    monkeypatch.setenv("EVENTRULES_PROCESSING_GUARANTEE", "sometimes")
    with pytest.raises(ConfigurationError) as raised:
        Settings()
    said = _everything_said(raised.value)
    assert "EVENTRULES_WEB_PORT" in said
    assert "EVENTRULES_PROCESSING_GUARANTEE" in said
    assert PASSWORD not in said
    assert SECRET not in said


@pytest.mark.parametrize("command", [["worker"], ["config", "list"]], ids=" ".join)
@pytest.mark.parametrize(("value", "shape"), WRONG_WEBHOOK_SECRETS[:2])
def test_the_cli_names_the_bad_setting_without_the_secret(
    command: list[str], value: str, shape: str
) -> None:
    env = {name: text for name, text in os.environ.items() if not name.startswith("EVENTRULES_")}
    env |= {
        "EVENTRULES_WEBHOOK_SECRETS": value,
        "EVENTRULES_SASL_PASSWORD": PASSWORD,
        # Nothing listens there: a command that got past its settings would fail differently.
        "EVENTRULES_BOOTSTRAP_SERVERS": "127.0.0.1:9",
    }
    done = subprocess.run(
        [sys.executable, "-m", "eventrules", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    said = done.stdout + done.stderr
    assert done.returncode == 1, said
    assert "Traceback" not in said
    assert said.startswith("Error: invalid settings"), said
    assert "webhook_secrets" in said.lower(), shape
    assert SECRET not in said
    assert PASSWORD not in said
