"""Shared test setup: the hypothesis CI profile and the real-OpenSSH ``sshd`` fixtures."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.sshd_fixture import REGISTRY, KeyCache, SshdFactory, SshdServer

settings.register_profile("ci", deadline=None, max_examples=200, print_blob=True)
if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
    settings.load_profile("ci")

SSHD_FIXTURES = frozenset({"sshd", "sshd_factory", "sshd_module", "sshd_module_factory"})
INTEROP_DIR = Path(__file__).parent / "interop"


@pytest.fixture(scope="session")
def sshd_keys(tmp_path_factory: pytest.TempPathFactory) -> KeyCache:
    """Host and client key pairs, generated on first use and shared by every server of the session."""
    return KeyCache(tmp_path_factory.mktemp("sshd-keys"))


@pytest.fixture
def sshd_factory(sshd_keys: KeyCache, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdFactory]:
    """Start real sshd servers for this test: ``sshd_factory(extra_config=["Ciphers aes128-ctr"])``."""
    factory = SshdFactory(sshd_keys, tmp_path_factory)
    yield factory
    factory.close()


@pytest.fixture
def sshd(sshd_factory: SshdFactory) -> SshdServer:
    """A real sshd with default settings, for this test only."""
    return sshd_factory()


@pytest.fixture(scope="module")
def sshd_module_factory(
    sshd_keys: KeyCache, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SshdFactory]:
    """Like ``sshd_factory`` but its servers live until the end of the test module."""
    factory = SshdFactory(sshd_keys, tmp_path_factory)
    yield factory
    factory.close()


@pytest.fixture(scope="module")
def sshd_module(sshd_module_factory: SshdFactory) -> SshdServer:
    """A real sshd with default settings, shared by the tests of one module."""
    return sshd_module_factory()


@pytest.fixture(autouse=True)
def _private_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the developer's own sshtui files (hosts.toml, keys, state)."""
    root = tmp_path_factory.mktemp("xdg")
    for variable in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(variable, str(root / variable.lower()))


# Tests that drive real processes, sockets and terminals on a shared 2-core machine get one retry
# (a genuinely broken test still fails twice); pure tests of the core and stores get none.
RETRIED_DIRS = tuple(Path(__file__).parent / name for name in ("interop", "net", "ui"))
RETRIED_FILES = frozenset({"test_demo.py", "test_options.py"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    interop = pytest.mark.interop
    retry = pytest.mark.flaky(reruns=1, reruns_delay=1)
    for item in items:
        uses_sshd = SSHD_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if uses_sshd or item.path.is_relative_to(INTEROP_DIR):
            item.add_marker(interop)
        real_processes = any(item.path.is_relative_to(d) for d in RETRIED_DIRS)
        if uses_sshd or real_processes or item.path.name in RETRIED_FILES:
            item.add_marker(retry)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    REGISTRY.begin_test()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        for server in REGISTRY.used_by_current_test():
            title = f"sshd log {server.host}:{server.port} ({report.when})"
            report.sections.append((title, server.log_tail()))
    return report
