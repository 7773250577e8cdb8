"""Podman on this machine, for the compose run (`make compose-test`): the images no registry here
serves, made locally (a Debian base by debootstrap, stand-ins from Debian packages and PyPI), its
Docker-compatible API for Compose v2, the healthchecks podman 4.3 cannot schedule without systemd,
and the host settings it changes, put back afterwards. Measured workarounds:
docs/deployment.md ("What ran for real").
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import re
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
STANDINS = Path(__file__).resolve().parent / "standins"
STANDIN_OVERRIDE = STANDINS / "compose.yml"
DEBIAN_BASE = "localhost/model-serving-standin/debian:bookworm"
APT_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
CONTAINERS_CONF = Path("/etc/containers/containers.conf")
TRITON_STANDIN_SOURCES = ("pyproject.toml", "README.md", "gateway", "conversion", "localstack")


class ContainerHostError(RuntimeError):
    """A podman step failed; the message holds the command and its output."""


def podman(*args: str, timeout: float = 120) -> str:
    """Run `podman args...`; its stdout, or ContainerHostError with the output's tail."""
    proc = subprocess.run(
        ["podman", *args], stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
        check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise ContainerHostError(
            f"$ podman {' '.join(args)}\nrc={proc.returncode}\n"
            f"{proc.stdout.decode(errors='replace')[-4000:]}\n"
            f"{proc.stderr.decode(errors='replace')[-4000:]}"
        )
    return proc.stdout.decode(errors="replace")


def image_exists(name: str) -> bool:
    return subprocess.run(["podman", "image", "exists", name], check=False).returncode == 0


@dataclass(frozen=True)
class Standins:
    """The local images the override file names: base-image build arguments and service images."""

    python: str
    tritonserver: str
    services: dict[str, str]  # compose service -> stand-in image (also its Containerfile target)

    @classmethod
    def from_override(cls, path: Path = STANDIN_OVERRIDE) -> Standins:
        services = yaml.safe_load(path.read_text())["services"]
        return cls(
            python=services["gateway"]["build"]["args"]["PYTHON_IMAGE"],
            tritonserver=services["triton"]["build"]["args"]["TRITON_IMAGE"],
            services={name: s["image"] for name, s in services.items() if "image" in s},
        )


def debian_mirror() -> str:
    """The host's Debian mirror (deb822 sources), else deb.debian.org."""
    if APT_SOURCES.exists():
        found = re.search(r"(?m)^URIs:\s*(\S+)", APT_SOURCES.read_text())
        if found:
            return found.group(1)
    return "http://deb.debian.org/debian"


def make_debian_base(work: Path, name: str = DEBIAN_BASE) -> bool:
    """debootstrap a minimal bookworm and import it as `name` (about a minute); False when it already
    exists (the cache: a second run reuses it). The official image's apt sources, plus the host's CA
    bundle for pip (HTTPS egress here is re-signed by a local CA), kept apart from ca-certificates."""
    if image_exists(name):
        return False
    rootfs = work / "rootfs"
    mirror = debian_mirror()
    try:
        subprocess.run(
            ["debootstrap", "--variant=minbase", "bookworm", str(rootfs), mirror],
            check=True,
            capture_output=True,
            timeout=900,
        )
        (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
        (rootfs / "etc/apt/sources.list.d/debian.sources").write_text(
            f"Types: deb\nURIs: {mirror}\nSuites: bookworm bookworm-updates\nComponents: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
            f"Types: deb\nURIs: {mirror}-security\nSuites: bookworm-security\nComponents: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        )
        shutil.copyfile(HOST_CA_BUNDLE, rootfs / "etc/ssl-host-ca-bundle.crt")
        (rootfs / "etc/pip.conf").write_text("[global]\ncert = /etc/ssl-host-ca-bundle.crt\n")
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (rootfs / cache).glob("*"):
                if entry.is_file():
                    entry.unlink()
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            ["podman", "import", "--change", "CMD=/bin/bash", "-", name],
            stdin=tar.stdout,
            capture_output=True,
            timeout=300,
            check=False,
        )
        tar.wait()
        if imported.returncode != 0:
            raise ContainerHostError(f"podman import: {imported.stderr.decode()[-2000:]}")
    except subprocess.CalledProcessError as error:
        raise ContainerHostError(f"debootstrap: {error.stderr.decode()[-3000:]}") from None
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)
    return True


def build(tag: str, containerfile: Path, context: Path, *extra: str, timeout: float = 1200) -> None:
    """`podman build` with the layer cache (a second run reuses every unchanged step)."""
    podman(
        "build",
        "--layers",
        "--force-rm",
        "-f",
        str(containerfile),
        "-t",
        tag,
        *extra,
        str(context),
        timeout=timeout,
    )


def build_standins(standins: Standins, work: Path) -> None:
    """Every stand-in image, on the debootstrap base: Python, the services, tritonserver."""
    base = ("--build-arg", f"BASE={DEBIAN_BASE}")
    build(standins.python, STANDINS / "python.Containerfile", STANDINS, *base)
    for target, image in standins.services.items():
        build(image, STANDINS / "services.Containerfile", STANDINS, *base, "--target", target)
    context = work / "tritonserver-context"
    shutil.rmtree(context, ignore_errors=True)
    (context / "project").mkdir(parents=True)
    for name in TRITON_STANDIN_SOURCES:
        source = ROOT / name
        if source.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(source, context / "project" / name, ignore=ignore)
        else:
            shutil.copy2(source, context / "project" / name)
    shutil.copy2(STANDINS / "tritonserver.sh", context / "tritonserver.sh")
    build(
        standins.tritonserver,
        STANDINS / "tritonserver.Containerfile",
        context,
        "--build-arg",
        f"PYTHON_STANDIN={standins.python}",
    )
    shutil.rmtree(context, ignore_errors=True)


@dataclass
class ApiService:
    """`podman system service` on a private socket: the Docker API that Compose v2 talks to."""

    socket_path: Path
    log_path: Path
    process: subprocess.Popen | None = None

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self, timeout_s: float = 30) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                ["podman", "system", "service", "--time=0", self.docker_host],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as sock:
                sock.connect(str(self.socket_path))
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise ContainerHostError(f"podman system service did not start: {self.log_path}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.socket_path.unlink(missing_ok=True)


@dataclass
class HealthcheckLoop:
    """podman 4.3 schedules healthchecks with systemd timers, which these hosts lack ("unable to get
    systemd connection to add healthchecks"): run every check of the project's containers each
    `interval_s` instead, so `compose up --wait` and `service_healthy` work."""

    project: str
    interval_s: float = 2.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="healthchecks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            for container in self.checked_containers():
                subprocess.run(
                    ["podman", "healthcheck", "run", container],
                    capture_output=True,
                    timeout=30,
                    check=False,
                )

    def checked_containers(self) -> list[str]:
        """Running containers of the project that have a healthcheck."""
        proc = subprocess.run(
            [
                "podman",
                "ps",
                "--filter",
                f"label=com.docker.compose.project={self.project}",
                "--format",
                "{{.ID}} {{.Status}}",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return [line.split()[0] for line in proc.stdout.splitlines() if "(" in line]


@dataclass(frozen=True)
class HostSettings:
    """What a container run changes on the host: netavark turns on net.ipv4.ip_forward."""

    ip_forward: str

    @classmethod
    def read(cls) -> HostSettings:
        return cls(ip_forward=IP_FORWARD.read_text().strip())

    def restore(self) -> None:
        IP_FORWARD.write_text(self.ip_forward + "\n")


def project_leftovers(project: str) -> list[str]:
    """Containers, pods, networks and volumes still labelled with the compose project."""
    label = f"label=com.docker.compose.project={project}"
    found = []
    for kind, listing in (
        ("container", ["ps", "-a", "--filter", label, "--format", "{{.Names}}"]),
        ("network", ["network", "ls", "--filter", label, "--format", "{{.Name}}"]),
        ("volume", ["volume", "ls", "--filter", label, "--format", "{{.Name}}"]),
    ):
        found += [f"{kind} {name}" for name in podman(*listing).split()]
    return found


def netavark_chains() -> set[tuple[str, str]]:
    """(table, chain) of every NETAVARK* iptables chain in the filter and nat tables."""
    if shutil.which("iptables") is None:
        return set()
    found = set()
    for table in ("filter", "nat"):
        for line in iptables_rules(table):
            if line[:1] == ["-N"] and line[1].startswith("NETAVARK"):
                found.add((table, line[1]))
    return found


def iptables_rules(table: str) -> list[list[str]]:
    listing = subprocess.run(
        ["iptables", "-t", table, "-S"], capture_output=True, text=True, timeout=30, check=True
    )
    return [shlex.split(line) for line in listing.stdout.splitlines()]


def iptables(table: str, *args: str) -> None:
    subprocess.run(["iptables", "-t", table, *args], capture_output=True, timeout=30, check=True)


@dataclass(frozen=True)
class Firewall:
    """netavark's iptables chains and the rules jumping to them stay after its networks are gone;
    `restore` removes those a run added (chains present before it are left alone)."""

    chains: frozenset[tuple[str, str]]

    @classmethod
    def snapshot(cls) -> Firewall:
        return cls(frozenset(netavark_chains()))

    def added(self) -> set[tuple[str, str]]:
        return netavark_chains() - self.chains

    def restore(self) -> None:
        added = self.added()
        for table, chain in added:
            iptables(table, "-F", chain)
        for table, chain in added:
            for rule in iptables_rules(table):
                if rule[:1] == ["-A"] and rule[-2:] == ["-j", chain]:
                    iptables(table, "-D", *rule[1:])
        for table, chain in added:
            iptables(table, "-X", chain)


def external_containers() -> set[str]:
    """Containers podman's storage holds, build (buildah) containers included."""
    return set(podman("ps", "-a", "--external", "--format", "{{.ID}}").split())


def processes_named(name: str) -> set[int]:
    """pids of running processes whose command name is `name` (conmon, aardvark-dns, ...)."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                if (entry / "comm").read_text().strip() == name and stat.split()[2] != "Z":
                    pids.add(int(entry.name))
    return pids


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class WheelIndex:
    """A one-package index (PEP 503 layout: <root>/<project>/<wheel>) on 127.0.0.1 serving what the
    host's pip finds for `requirement` (its find-links, no download): the models image installs
    PyTorch's CPU wheel from it, download.pytorch.org being unreachable here."""

    root: Path
    requirement: str
    # a fixed port keeps the image's build argument, hence its layer cache, the same between runs;
    # any free port when it is taken
    preferred_port: int = 38917
    server: http.server.ThreadingHTTPServer | None = None

    def start(self) -> str:
        """Fetch the wheel with pip, serve the folder; returns the index URL."""
        project = re.split(r"[=<>~!\[ ]", self.requirement, maxsplit=1)[0]
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary",
                ":all:",
                "--dest",
                str(self.root / project),
                self.requirement,
            ],
            check=True,
            capture_output=True,
            timeout=600,
        )
        handler = functools.partial(_QuietHandler, directory=str(self.root))
        try:
            self.server = http.server.ThreadingHTTPServer(
                ("127.0.0.1", self.preferred_port), handler
            )
        except OSError:
            self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, name="wheel-index", daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


CACHE_PREFIXES = ("localhost/model-serving-standin/", "localhost/model-serving-compose-test/")


def cached_images() -> dict[str, str]:
    """name:tag -> image id of the images compose-test keeps as its cache (`make compose-clean`)."""
    listing = podman("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
    pairs = (line.split() for line in listing.splitlines() if line.strip())
    return {name: image for name, image in pairs if name.startswith(CACHE_PREFIXES)}


@dataclass
class HostState:
    """What the host looked like before a run (settings, firewall, containers, the processes podman
    starts for them, the cached images), to put back afterwards and to tell what a run left behind."""

    settings: HostSettings
    firewall: Firewall
    containers: set[str]
    helpers: dict[str, set[int]]
    images: dict[str, str]

    HELPERS = ("conmon", "aardvark-dns", "podman")

    @classmethod
    def snapshot(cls) -> HostState:
        return cls(
            settings=HostSettings.read(),
            firewall=Firewall.snapshot(),
            containers=external_containers(),
            helpers={name: processes_named(name) for name in cls.HELPERS},
            images=cached_images(),
        )

    def restore(self, project: str, timeout_s: float = 30) -> list[str]:
        """Remove the build containers a failed build left and the cached images this run replaced,
        put the settings and the firewall back; return what is still there that was not before
        (empty when the host is as found, the image cache aside)."""
        for container in external_containers() - self.containers:
            with contextlib.suppress(ContainerHostError):
                podman("rm", "--force", container)
        now = cached_images()
        for name, image in self.images.items():
            if now.get(name) != image and image not in now.values():
                with contextlib.suppress(ContainerHostError):
                    podman("rmi", image)
        self.settings.restore()
        self.firewall.restore()
        deadline = time.monotonic() + timeout_s
        while self.new_helpers() and time.monotonic() < deadline:
            time.sleep(0.5)
        left = project_leftovers(project)
        left += [f"build container {c}" for c in external_containers() - self.containers]
        left += [f"{name} process {pid}" for name, pid in self.new_helpers()]
        if HostSettings.read() != self.settings:
            left.append(f"net.ipv4.ip_forward is {HostSettings.read().ip_forward}")
        left += [f"iptables chain {table}/{chain}" for table, chain in self.firewall.added()]
        return left

    def new_helpers(self) -> list[tuple[str, int]]:
        return [
            (name, pid)
            for name in self.HELPERS
            for pid in sorted(processes_named(name) - self.helpers[name])
        ]


def container_rlimits() -> dict[str, int]:
    """The hard limits a container may get on this host: nofile and nproc as containers.conf's
    default_ulimits give every container (scripts/install-podman.sh; higher ones fail here, e.g.
    nproc at the host's own hard limit), memlock as the host's hard limit."""
    conf = CONTAINERS_CONF.read_text() if CONTAINERS_CONF.exists() else ""
    limits = {"memlock": resource.getrlimit(resource.RLIMIT_MEMLOCK)[1]}
    for name, fallback in (("nofile", resource.RLIMIT_NOFILE), ("nproc", resource.RLIMIT_NPROC)):
        given = re.search(rf'"{name}=\d+:(\d+)"', conf)
        limits[name] = int(given.group(1)) if given else resource.getrlimit(fallback)[1]
    return limits
