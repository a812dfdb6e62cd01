"""The compose file and the images, checked without a Docker engine.

What can go wrong unnoticed until a deploy: a command or option the CLI does
not have, services writing checkpoints to different places, Redis without its
append-only file, a secret with a default, a COPY of a path that moved or that
``.dockerignore`` drops, a torch in an image that drifted from the pinned one.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib
from pathlib import Path

import pytest
import typer
import typer.main
import yaml

from app.api.health import router as health_router
from app.cli import cli as server_cli
from training.cli import app as trainer_cli

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
MODEL_USERS = ("api", "worker", "trainer-gpu")
#: the console scripts of pyproject.toml and the typer apps behind them
PROGRAMS = {"nextitem": trainer_cli, "nextitem-server": server_cli}
#: click's UsageError, whether typer uses click or its own copy of it
USAGE_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


def resolve(args: list[str]) -> tuple[typer.core.TyperCommand, typer.Context]:
    """Parse ``nextitem[-server] ARGS`` with the real CLI, without running it.

    Click raises a usage error for an unknown command or option, a bad value
    (``--workers 0``, ``--port abc``) or a missing required option.
    """
    assert args[0] in PROGRAMS, args
    command = typer.main.get_command(PROGRAMS[args[0]])
    rest = list(args[1:])
    while hasattr(command, "list_commands"):  # a group: the next word names a subcommand
        assert rest, f"{shlex.join(args)} names a group, not a command"
        ctx = typer.Context(command, info_name=args[0])
        sub = command.get_command(ctx, rest[0])
        assert sub is not None, f"`{shlex.join(args)}`: no command {rest[0]!r}"
        command, rest = sub, rest[1:]
    return command, command.make_context(command.name or "", rest)


def dockerfile(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    lines = [ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
    assert not any(p.startswith("!") for p in patterns), "exceptions are not checked here"
    return [p.strip("/") for p in patterns]


def ignored(rel: str, patterns: list[str]) -> bool:
    """Whether ``.dockerignore`` drops ``rel`` (or a folder above it) from the build context."""
    parts = rel.split("/")
    for i in range(1, len(parts) + 1):
        prefix = "/".join(parts[:i])
        for pattern in patterns:
            if pattern.startswith("**/"):
                tail = pattern[3:]
                if any(fnmatch.fnmatch("/".join(parts[j:i]), tail) for j in range(i)):
                    return True
            elif fnmatch.fnmatch(prefix, pattern):
                return True
    return False


def image_services() -> dict[str, Path]:
    return {
        name: ROOT / s["build"]["context"] / s["build"]["dockerfile"]
        for name, s in SERVICES.items()
        if "build" in s
    }


# ------------------------------------------------------------------ the resolver


def test_programs_are_the_console_scripts() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"nextitem": "training.cli:main", "nextitem-server": "app.cli:main"}


def test_resolve_catches_unknown_commands_options_and_bad_values() -> None:
    command, ctx = resolve(["nextitem-server", "serve", "--port", "9000", "--workers", "3"])
    assert command.name == "serve" and ctx.params["port"] == 9000 and ctx.params["workers"] == 3
    for bad in (
        ["nextitem-server", "srve"],
        ["nextitem-server", "serve", "--threads", "2"],
        ["nextitem-server", "serve", "--workers", "0"],
        ["nextitem", "serve"],  # the trainer's program does not serve
        ["nextitem", "train"],
    ):
        with pytest.raises((USAGE_ERROR, AssertionError)):
            resolve(bad)


def test_dockerignore_matching() -> None:
    assert ignored("tests/test_x.py", ["tests"])
    assert ignored("training/data/x.py", ["**/data"])
    assert not ignored("training/data/x.py", ["data"])  # anchored at the context root
    assert ignored("app/__pycache__/m.pyc", ["**/__pycache__"])


# ------------------------------------------------------------------- compose


def test_redis_keeps_an_append_only_file_on_a_volume() -> None:
    redis = SERVICES["redis"]
    command = redis["command"]
    assert command[0] == "redis-server"
    assert command[command.index("--appendonly") + 1] == "yes"
    volume, _, target = next(v for v in redis["volumes"] if v.endswith(":/data")).partition(":")
    assert target == "/data" and volume in COMPOSE["volumes"]
    assert "redis-cli" in redis["healthcheck"]["test"]


def test_redis_has_a_memory_limit_and_never_evicts() -> None:
    """At its limit Redis must refuse writes (the service answers 503), not evict: any
    eviction policy silently drops logged events, event ids and visits."""
    command = SERVICES["redis"]["command"]
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    limit = command[command.index("--maxmemory") + 1]
    assert re.fullmatch(r"\$\{REDIS_MAXMEMORY:-\d+[kmg]b\}", limit), limit


def test_api_worker_and_trainer_share_one_model_volume_and_one_redis() -> None:
    dirs = {SERVICES[name]["environment"]["NEXTITEM_MODEL_DIR"] for name in MODEL_USERS}
    assert len(dirs) == 1
    (model_dir,) = dirs
    mounts = set()
    for name in MODEL_USERS:
        service = SERVICES[name]
        mount = [v for v in service["volumes"] if v.split(":")[1] == model_dir]
        assert len(mount) == 1, f"{name} does not mount {model_dir}"
        mounts.add(mount[0].split(":")[0])
        assert service["environment"]["NEXTITEM_REDIS_URL"].startswith("redis://redis:6379/")
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
    assert len(mounts) == 1 and mounts <= set(COMPOSE["volumes"])


def test_admin_token_comes_from_the_environment_without_a_default() -> None:
    token = SERVICES["api"]["environment"]["NEXTITEM_ADMIN_TOKEN"]
    assert re.fullmatch(r"\$\{NEXTITEM_ADMIN_TOKEN:\?[^}]+\}", token), token
    for service in SERVICES.values():
        for key, value in service.get("environment", {}).items():
            if "TOKEN" in key:
                assert value == token  # the same required variable, never a literal


def test_api_key_and_durability_come_from_the_environment() -> None:
    env = SERVICES["api"]["environment"]
    assert env["NEXTITEM_API_KEY"] == "${NEXTITEM_API_KEY:-}"  # never a literal key
    default = re.fullmatch(r"\$\{NEXTITEM_DURABILITY:-(\w+)\}", env["NEXTITEM_DURABILITY"])
    assert default is not None
    from app.settings import Settings

    assert Settings(api_key="", durability=default.group(1)).api_key is None  # empty: off


def test_gpu_trainer_runs_under_its_profile_with_a_gpu_reserved() -> None:
    trainer = SERVICES["trainer-gpu"]
    assert trainer["profiles"] == ["gpu"]
    (device,) = trainer["deploy"]["resources"]["reservations"]["devices"]
    assert "gpu" in device["capabilities"]
    assert trainer["build"]["dockerfile"] == "docker/Dockerfile.gpu"
    assert {SERVICES[n]["build"]["dockerfile"] for n in ("api", "worker")} == {"docker/Dockerfile"}


@pytest.mark.parametrize("name", sorted(n for n, s in SERVICES.items() if "command" in s))
def test_service_commands_exist_in_the_cli(name: str) -> None:
    command = SERVICES[name]["command"]
    if command[0] not in PROGRAMS:
        assert name == "redis"
        return
    resolve(command)


def test_expected_commands() -> None:
    assert resolve(SERVICES["api"]["command"])[0].name == "serve"
    for name in ("worker", "trainer-gpu"):
        assert resolve(SERVICES[name]["command"])[0].name == "worker"


def test_api_healthcheck_asks_a_real_route_on_the_served_port() -> None:
    test = " ".join(SERVICES["api"]["healthcheck"]["test"])
    match = re.search(r"http://127\.0\.0\.1:(\d+)(/\w+)", test)
    assert match is not None, test
    _, ctx = resolve(SERVICES["api"]["command"])
    assert int(match.group(1)) == ctx.params["port"]
    assert ctx.params["host"] == "0.0.0.0"  # reachable from outside the container
    assert match.group(2) in {r.path for r in health_router.routes}
    assert f"{ctx.params['port']}:{ctx.params['port']}" in SERVICES["api"]["ports"]


# ----------------------------------------------------------------- the images


def test_every_built_image_has_its_dockerfile() -> None:
    paths = image_services()
    assert set(paths) == {"api", "worker", "trainer-gpu"}
    for name, path in paths.items():
        assert path.is_file(), f"{name}: no {path}"


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.gpu"])
def test_dockerfile_copies_existing_paths_and_runs_a_cli_command(name: str) -> None:
    instructions = dockerfile(ROOT / "docker" / name)
    patterns = dockerignore_patterns()
    copies = [rest.split() for word, rest in instructions if word == "COPY"]
    assert copies
    for words in copies:
        sources = [w for w in words[:-1] if not w.startswith("--")]
        for src in sources:
            path = ROOT / src
            assert path.exists(), f"{name}: COPY {src}: no such path"
            files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
            for f in files:
                rel = f.relative_to(ROOT).as_posix()
                if "__pycache__" not in rel:
                    assert not ignored(rel, patterns), f"{name}: .dockerignore drops {rel}"
    entry = [json.loads(rest) for word, rest in instructions if word == "ENTRYPOINT"]
    cmd = [json.loads(rest) for word, rest in instructions if word == "CMD"]
    assert len(cmd) == 1, f"{name}: one CMD in exec form"
    resolve((entry[-1] if entry else []) + cmd[0])
    users = [rest for word, rest in instructions if word == "USER"]
    assert users and users[-1] not in ("root", "0"), f"{name}: runs as root"


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.gpu"])
def test_images_install_the_pinned_torch(name: str) -> None:
    pinned = re.search(r'"torch==([^"]+)"', (ROOT / "pyproject.toml").read_text())
    assert pinned is not None
    text = (ROOT / "docker" / name).read_text()
    installs = re.findall(r"pip install torch==(\S+)", text)
    assert installs == [pinned.group(1)], installs
    if name == "Dockerfile":
        assert "--index-url https://download.pytorch.org/whl/cpu" in text
    else:
        assert '".[gpu]"' in text  # faiss-gpu through the gpu extra
