"""Reusable Python environments for LOCAL steps (the LOCAL stand-in for a container image).

One venv per (kernel, requirements content, product interpreter) lives under
`<home>/envs/<kernel>-<hash12>`. It is created without pip and sees the product venv's
packages through a `.pth` file placed in its own site-packages, so its own installs come
first and requirements the product already satisfies install nothing. A Jupyter kernel
spec for it is registered under the env's own prefix (`<env>/share/jupyter/kernels/`),
never in the user's home. A ready marker written last makes a half-built env be rebuilt;
a file lock serialises concurrent builders. Reuse only reads files (no subprocess). Build
commands run through procs.py: a cancelled or killed step takes them with it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import site
import subprocess
import sys
import sysconfig
import time
import venv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from ml_pipelines.local import procs
from ml_pipelines.steps import StepFailed, StepPreconditionFailed

# Kernels LOCAL can honour: the product's own Python. Others need their own base image.
LOCAL_KERNELS: tuple[str, ...] = ("python3",)

_READY_MARKER = ".ml_pipelines_env_ready.json"
_PTH_NAME = "_ml_pipelines_product.pth"
_PIP_TAIL_LINES = 40


@dataclass(frozen=True)
class PythonEnv:
    path: Path  # the venv directory
    python: Path  # its interpreter
    kernel_name: str  # Jupyter kernel name registered under jupyter_path
    jupyter_path: Path  # <env>/share/jupyter: put on JUPYTER_PATH (kernels/ below it)
    content_hash: str  # sha256 of kernel + requirements + product interpreter
    reused: bool  # True when an existing ready env was returned untouched


def _product_site_dirs() -> list[str]:
    """Site-packages of the running (product) interpreter, e.g. the project's .venv."""
    return [d for d in site.getsitepackages() if Path(d).is_dir()]


def env_content_hash(kernel: str, requirements: bytes) -> str:
    """What makes an env distinct: the kernel, the requirements (their digest) and the product Python
    (its version and site-packages, since the env links to them)."""
    h = hashlib.sha256()
    for part in (kernel.encode(), requirements, sys.version.encode(), *map(str.encode, _product_site_dirs())):
        h.update(len(part).to_bytes(8, "big") + part)
    return h.hexdigest()


def _kernel_name(kernel: str, content_hash: str) -> str:
    return f"mlp-{kernel}-{content_hash[:12]}"


def _python_of(env_dir: Path) -> Path:
    return env_dir / "bin" / "python"


def _site_packages_of(env_dir: Path) -> Path:
    return Path(sysconfig.get_path("purelib", scheme="venv", vars={"base": str(env_dir), "platbase": str(env_dir)}))


def _has_requirements(text: str) -> bool:
    return any(line.strip() and not line.strip().startswith("#") for line in text.splitlines())


def _run(cmd: list[str], what: str) -> None:
    """Run a build command; on failure raise StepFailed (retried: pip may hit the network) with its output's tail."""
    # its own process group, stopped with the step (procs.py)
    proc = procs.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-_PIP_TAIL_LINES:])
        raise StepFailed(f"{what} failed (exit code {proc.returncode}): {' '.join(cmd)}\n{tail}")


def _build(
    env_dir: Path, kernel: str, kernel_name: str, requirements_file: Path | None, req_text: str, log: Any
) -> None:
    # A fresh venv at its final path (scripts embed absolute paths), no pip of its own.
    venv.EnvBuilder(clear=True, symlinks=True, with_pip=False).create(env_dir)
    site_packages = _site_packages_of(env_dir)
    site_packages.mkdir(parents=True, exist_ok=True)
    # addsitedir (not a bare path line) so the product's own .pth files (editable installs) apply too;
    # it runs while the env's site-packages is processed, so the product dirs come after it.
    lines = [f"import site; site.addsitedir({d!r})" for d in _product_site_dirs()]
    (site_packages / _PTH_NAME).write_text("\n".join(lines) + "\n")
    python = str(_python_of(env_dir))
    if requirements_file is not None and _has_requirements(req_text):
        log.info(f"Installing {requirements_file} into {env_dir}")
        # pip is importable through the .pth; it installs into this venv's prefix.
        _run(
            [
                python,
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "--no-warn-script-location",
                "-r",
                str(requirements_file),
            ],
            f"pip install -r {requirements_file.name}",
        )
    _run(
        [
            python,
            "-m",
            "ipykernel",
            "install",
            "--prefix",
            str(env_dir),
            "--name",
            kernel_name,
            "--display-name",
            f"ml-pipelines {kernel} ({kernel_name[-12:]})",
        ],
        "Jupyter kernel registration",
    )


def env_key(kernel: str, requirements_file: Path | None) -> str:
    """The content hash of the env for (kernel, requirements): the requirements count with the
    files their `-r`/`-c` lines name, so a changed base.txt makes a new env."""
    from ml_pipelines.plan.versions import requirements_digest

    digest = requirements_digest(requirements_file).encode() if requirements_file is not None else b""
    return env_content_hash(kernel, digest)


def ensure_python_env(home: Path, kernel: str, requirements_file: Path | None, log: logging.Logger | Any) -> PythonEnv:
    """Return the env for (kernel, requirements), building it only when none is ready."""
    if kernel not in LOCAL_KERNELS:
        raise StepPreconditionFailed(
            f"kernel {kernel!r} cannot run in LOCAL; LOCAL kernels: {', '.join(LOCAL_KERNELS)}. "
            "Use a cloud environment (DEV/BETA/PROD) for other kernels."
        )
    if requirements_file is not None and not Path(requirements_file).is_file():
        raise StepPreconditionFailed(f"requirements file not found: {requirements_file}")
    req_bytes = Path(requirements_file).read_bytes() if requirements_file is not None else b""
    content_hash = env_key(kernel, requirements_file)
    kernel_name = _kernel_name(kernel, content_hash)
    envs_dir = Path(home) / "envs"
    env_dir = envs_dir / f"{kernel}-{content_hash[:12]}"
    marker = env_dir / _READY_MARKER

    def result(reused: bool) -> PythonEnv:
        return PythonEnv(env_dir, _python_of(env_dir), kernel_name, env_dir / "share" / "jupyter", content_hash, reused)

    def is_ready() -> bool:
        try:
            return json.loads(marker.read_text()).get("content_hash") == content_hash
        except (OSError, ValueError):
            return False

    if is_ready():  # fast path: file reads only
        return result(reused=True)

    envs_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(envs_dir / f"{env_dir.name}.lock")):
        if is_ready():  # another builder finished while we waited
            return result(reused=True)
        if env_dir.exists():
            log.info(f"Removing half-built env {env_dir}")
            shutil.rmtree(env_dir)
        log.info(f"Building Python env {env_dir} (kernel {kernel}, requirements {requirements_file})")
        start = time.monotonic()
        try:
            _build(env_dir, kernel, kernel_name, requirements_file, req_bytes.decode(errors="replace"), log)
        except Exception:
            shutil.rmtree(env_dir, ignore_errors=True)
            raise
        marker.write_text(
            json.dumps(
                {
                    "content_hash": content_hash,
                    "kernel": kernel,
                    "kernel_name": kernel_name,
                    "requirements_file": str(requirements_file) if requirements_file else None,
                    "build_s": round(time.monotonic() - start, 3),
                }
            )
        )
        log.info(f"Built Python env {env_dir} in {time.monotonic() - start:.1f}s")
    return result(reused=False)
