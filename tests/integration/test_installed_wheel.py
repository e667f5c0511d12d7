"""The built wheel, installed outside the checkout, finds everything it ships.

The wheel is built from the repository (``pip wheel``), installed without dependencies into a
fresh venv in a temporary folder, and its ``eventrules`` script runs from another temporary
folder, one that holds a decoy ``topics/``. The dependencies come from the project's venv through
a path entry, so the test needs no index; its ``.pth`` files (the editable install's path to
``src/``) are not processed from there, and the wheel's own package comes first on the path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from eventrules import native

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Installed:
    venv: Path
    site_packages: Path
    cwd: Path

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("EVENTRULES_")}
        clean["COLUMNS"] = "250"  # rich tables: whole topic names, never folded
        return subprocess.run(
            [str(self.venv / "bin" / "eventrules"), *args],
            cwd=self.cwd,
            env={**clean, **env},
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    def ok(self, *args: str, **env: str) -> str:
        done = self.run(*args, **env)
        assert done.returncode == 0, f"eventrules {' '.join(args)}:\n{done.stdout}{done.stderr}"
        return done.stdout

    def python(self, code: str, **env: str) -> str:
        done = subprocess.run(
            [str(self.venv / "bin" / "python"), "-c", code],
            cwd=self.cwd,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "-w", str(root / "dist"), str(REPO_ROOT)],
        check=True,
        timeout=300,
    )
    (wheel,) = (root / "dist").glob("eventrules-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([*pip, "--python", str(python), "install", "--no-deps", str(wheel)], check=True)
    site_packages = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (site_packages / "project-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    cwd = root / "elsewhere"
    (cwd / "topics").mkdir(parents=True)  # what the old lookup wrongly took for ours
    return Installed(venv, site_packages, cwd)


def test_the_installed_package_is_the_wheel_not_the_checkout(installed: Installed) -> None:
    found = installed.python(
        "import eventrules, eventrules.settings as s; "
        "print(eventrules.__file__); print(s.find_project_file('topics'))"
    ).split()
    package, topics = (Path(line) for line in found)
    assert package.is_relative_to(installed.site_packages)
    assert topics == installed.site_packages / "eventrules" / "shipped" / "topics"
    assert not (installed.site_packages / "eventrules" / "shipped" / "kafka" / "target").exists()


def test_the_wheel_carries_the_checkouts_build_of_the_event_path(installed: Installed) -> None:
    # compiled in the checkout (scripts/compile.py, as CI does): compiled in the wheel, which
    # hatch_build.py tags for this platform; pure Python otherwise
    here = native.assess({})  # the build, whatever this process runs
    found = installed.python(
        "import json, eventrules.runtime.runner as r; from eventrules import native; "
        "print(json.dumps([native.status().compiled, r.__file__]))",
        EVENTRULES_PURE_PYTHON="",
        PYTHONPATH="",  # the wheel's package, not a checkout's
    )
    compiled, runner = json.loads(found)
    assert compiled == here.compiled, here.reason
    assert Path(runner).is_relative_to(installed.site_packages)
    assert runner.endswith(".py") != here.compiled
    (wheel,) = installed.venv.parent.joinpath("dist").glob("eventrules-*.whl")
    assert wheel.name.endswith("-py3-none-any.whl") != here.compiled


def test_templates_list_and_dry_run_work_offline(installed: Installed) -> None:
    listed = installed.ok("templates", "list")
    for name in ("low-stock-alert", "order-confirmation", "bulk-order-discount"):
        assert name in listed
    shipped = installed.site_packages / "eventrules" / "shipped" / "config" / "templates"
    workflow = shipped / "workflows" / "low-stock-alert.yaml"
    assert "valid" in installed.ok("validate", str(workflow))
    event = installed.cwd / "event.json"
    event.write_text((shipped / "events" / "low-stock-alert.json").read_text())
    (result,) = json.loads(installed.ok("test", str(workflow), "--event", str(event), "--json"))
    assert result["trace"]["fired"] is True
    assert result["actions"]


def test_explicit_settings_override_the_shipped_files(installed: Installed) -> None:
    mine = installed.cwd / "my-templates"
    (mine / "workflows").mkdir(parents=True)
    (mine / "workflows" / "renewal.yaml").write_text(
        "kind: workflow\nid: renewal\nname: Renewal\ntrigger: subscription.renewed\n"
        "created_by: tests\nactions:\n  - {type: add_tag, user_id: u1, tag: renewed}\n"
    )
    listed = installed.ok("templates", "list", EVENTRULES_TEMPLATES_DIR=str(mine))
    assert "renewal" in listed
    assert "low-stock-alert" not in listed
    workflow = str(mine / "workflows" / "renewal.yaml")
    refused = installed.run("validate", workflow)
    assert refused.returncode == 1
    assert "subscription.renewed" in refused.stdout + refused.stderr
    triggers = installed.cwd / "triggers.yaml"
    triggers.write_text("triggers:\n  - {name: subscription.renewed, group: subscription}\n")
    extra = json.dumps([str(triggers)])
    assert "valid" in installed.ok("validate", workflow, EVENTRULES_EXTRA_TRIGGER_FILES=extra)


def test_the_installed_pom_resolves_the_broker_jars_into_the_user_cache(
    installed: Installed,
) -> None:
    cache = installed.cwd / "cache"
    said = installed.python(  # Maven writes to the same stdout: the path is on its own line
        "from eventrules.kafka.localbroker import LocalBroker\n"
        "print('\\njars:', LocalBroker().jars_dir())",
        XDG_CACHE_HOME=str(cache),
    )
    jars = said.rsplit("jars: ", 1)[1].strip()
    assert Path(jars).parent == cache / "eventrules"
    assert list(Path(jars).glob("kafka_2.13-*.jar"))
    assert not (installed.site_packages / "eventrules" / "shipped" / "kafka" / "target").exists()


def test_topics_apply_and_templates_install_against_the_broker(
    installed: Installed, kafka_bootstrap: str
) -> None:
    env = {
        "EVENTRULES_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "EVENTRULES_TOPIC_PREFIX": f"w{uuid.uuid4().hex[:10]}.",
    }
    installed.ok("topics", "apply", "--replication-factor", "1", **env)
    declared = sorted(
        path.stem for path in (installed.site_packages / "eventrules/shipped/topics").glob("*.yaml")
    )
    listed = installed.ok("topics", "list", **env)
    for name in declared:
        assert env["EVENTRULES_TOPIC_PREFIX"] + name in listed
    installed.ok("templates", "install", "--all", "--yes", "--as", "wheel-test", **env)
    live = installed.ok("config", "list", **env)
    assert "low-stock-alert" in live
    assert "bulk-order-discount" in live

    one = installed.cwd / "one-topic"
    one.mkdir()
    (one / "dlq.yaml").write_text(
        (installed.site_packages / "eventrules/shipped/topics/dlq.yaml").read_text()
    )
    only = installed.ok("topics", "list", EVENTRULES_TOPICS_DIR=str(one), **env)
    assert env["EVENTRULES_TOPIC_PREFIX"] + "dlq" in only
    assert env["EVENTRULES_TOPIC_PREFIX"] + "config" not in only
