"""Without DJANGO_SECRET_KEY each checkout generates its own key; a public address and --deploy refuse it."""

from __future__ import annotations

import stat
import subprocess
import sys

import pytest
from django.core.management.base import CommandError
from django.test import override_settings

from agentfield_project import secret_key
from nodes.management.commands.serve import refuse_weak_secret_key
from tests.processes import ROOT, base_env, free_port

STRONG = "k" * 20 + "-a-long-random-value-set-by-the-operator"


def test_a_key_is_generated_once_readable_by_its_owner_only(tmp_path):
    path = tmp_path / "var" / "secret_key"
    key = secret_key.load_or_create(path)
    assert len(key) >= 50 and key != secret_key.LEGACY_DEFAULT
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secret_key.load_or_create(path) == key
    assert secret_key.load_or_create(tmp_path / "other") != key
    assert sorted(p.name for p in path.parent.iterdir()) == ["secret_key"]  # no draft left behind


@pytest.mark.e2e
def test_processes_starting_together_agree_on_one_key(tmp_path):
    path = tmp_path / "secret_key"
    code = f"from pathlib import Path; from agentfield_project import secret_key; print(secret_key.load_or_create(Path({str(path)!r})))"
    starts = [
        subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True) for _ in range(8)
    ]
    keys = {process.communicate(timeout=60)[0].strip() for process in starts}
    assert keys == {path.read_text().strip()}


def test_an_emptied_key_file_is_an_error_not_a_silent_empty_key(tmp_path):
    path = tmp_path / "secret_key"
    path.write_text("\n")
    with pytest.raises(ValueError, match="is empty"):
        secret_key.load_or_create(path)


@pytest.mark.parametrize(
    ("key", "generated", "weak"),
    [(STRONG, True, True), (secret_key.LEGACY_DEFAULT, False, True), ("", False, True), (STRONG, False, False)],
)
def test_which_keys_are_weak(key, generated, weak):
    assert secret_key.is_weak(key, generated) is weak


def test_serve_refuses_a_public_address_with_a_generated_or_public_key():
    with override_settings(SECRET_KEY=STRONG, AGENTFIELD_SECRET_KEY_GENERATED=True):
        with pytest.raises(CommandError, match="DJANGO_SECRET_KEY is not set"):
            refuse_weak_secret_key("0.0.0.0")  # noqa: S104
        refuse_weak_secret_key("127.0.0.1")
    with override_settings(SECRET_KEY=secret_key.LEGACY_DEFAULT, AGENTFIELD_SECRET_KEY_GENERATED=False):
        with pytest.raises(CommandError):
            refuse_weak_secret_key("10.0.0.5")
    with override_settings(SECRET_KEY=STRONG, AGENTFIELD_SECRET_KEY_GENERATED=False):
        refuse_weak_secret_key("0.0.0.0")  # noqa: S104


def _manage(db_url: str, tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = base_env(db_url, AGENTFIELD_SECRET_KEY_FILE=tmp_path / "secret_key", **env)
    environment.pop("DJANGO_SECRET_KEY", None)
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )


@pytest.mark.e2e
def test_settings_generate_the_key_file_and_check_deploy_fails_until_a_key_is_set(db_url, tmp_path):
    done = _manage(db_url, tmp_path, "check", "--deploy")
    assert done.returncode != 0 and "nodes.E001" in done.stderr, done.stderr
    assert (tmp_path / "secret_key").exists()
    done = _manage(db_url, tmp_path, "check", "--deploy", DJANGO_SECRET_KEY=secret_key.LEGACY_DEFAULT)
    assert done.returncode != 0 and "nodes.E001" in done.stderr
    done = _manage(db_url, tmp_path, "check", "--deploy", DJANGO_SECRET_KEY=STRONG)
    assert "nodes.E001" not in done.stdout + done.stderr
    assert done.returncode == 0, done.stderr


@pytest.mark.e2e
def test_serve_exits_explaining_the_secret_key_on_a_public_address(db_url, tmp_path):
    done = _manage(db_url, tmp_path, "serve", "--host", "0.0.0.0", "--port", str(free_port()))  # noqa: S104
    assert done.returncode != 0
    assert "Refusing to listen on 0.0.0.0: DJANGO_SECRET_KEY is not set" in done.stderr
