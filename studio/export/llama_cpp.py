"""llama.cpp, from one pinned `llama-cpp-python` source distribution: its converter
(`convert_hf_to_gguf.py`, the `conversion` package and the `gguf-py` of the same commit), its
quantizer (`llama_model_quantize`) and its runtime (loading a GGUF, tokenizing, generating).

The registry carries `llama-cpp-python` as a source distribution only, and the built package
does not ship the converter. `install()` therefore downloads that one file (or takes a copy
the user already has), keeps the converter's files from it, and builds and installs the
package from the same file, so the converter that writes a GGUF and the runtime that reads it
are one llama.cpp commit. The built wheel is kept, so a second virtual environment on the
same machine installs in seconds instead of compiling llama.cpp again.

`python -m studio install-gguf` runs it; the Export tab and `export --gguf` say so when it is
missing.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from studio.errors import StudioError
from studio.fsutil import file_sha256

VERSION = "0.3.36"
PACKAGE = "llama-cpp-python"
TOOLS_ENV = "STUDIO_LLAMA_CPP_TOOLS"  # a folder holding convert_hf_to_gguf.py and its package
CACHE_ENV = "STUDIO_CACHE"
# What the converter needs from the sdist, under vendor/llama.cpp/.
CONVERTER_MEMBERS = ("convert_hf_to_gguf.py", "conversion/", "gguf-py/")
# The multimodal library is not needed to convert, quantize or run a text model; leaving it
# out saves a seventh of the build. GGML_NATIVE=OFF builds for AVX2 instead of this CPU's every
# extension: on a virtual machine that lists AMX in /proc/cpuinfo but does not let a process use
# it, the native build dies with SIGILL on its first q8_0 matrix product (seen here). A user's
# own CMAKE_ARGS (CUDA, Metal, GGML_NATIVE=ON) come after these, so they win.
DEFAULT_CMAKE_ARGS = "-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF"
INSTALL_HINT = "python -m studio install-gguf"


class GGUFToolsMissing(StudioError, RuntimeError):
    """llama.cpp is not installed: the message says the one command that installs it."""

    code = "gguf_missing"


def cache_root() -> Path:
    base = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "tsumugi-studio"
    return Path(base) / "llama.cpp" / VERSION


def tools_dir() -> Path:
    return Path(os.environ.get(TOOLS_ENV) or cache_root() / "tools")


def converter_path() -> Path:
    return tools_dir() / "convert_hf_to_gguf.py"


def runtime_version() -> str | None:
    """The installed llama-cpp-python's version, or None (without importing it)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(PACKAGE)
    except PackageNotFoundError:
        return None


def missing() -> list[str]:
    """What of the GGUF extra is not here, in words; empty when everything is."""
    found = []
    installed = runtime_version()
    if installed is None:
        found.append(f"{PACKAGE} (llama.cpp's runtime and quantizer) is not installed")
    elif installed != VERSION:
        found.append(f"{PACKAGE} {installed} is installed; the studio's converter is {VERSION}")
    if not converter_path().is_file():
        found.append(f"llama.cpp's converter is not at {converter_path()}")
    return found


def require() -> None:
    """Raise `GGUFToolsMissing` naming what is missing and the command that installs it."""
    gaps = missing()
    if gaps:
        raise GGUFToolsMissing(
            "GGUF export needs llama.cpp: "
            + "; ".join(gaps)
            + f". Install it with `{INSTALL_HINT}` "
            f"(it downloads the {PACKAGE} {VERSION} source once and builds it: about 10 minutes "
            "on 2 cores, seconds on a machine that built it before).",
            command=INSTALL_HINT,
            gaps="; ".join(gaps),
        )


# --- install ----------------------------------------------------------------------------------
def _machine_key() -> str:
    """The cached wheel is kept per Python, machine architecture and build settings."""
    text = f"{sys.version_info[:2]}|{platform.machine()}|{DEFAULT_CMAKE_ARGS}|{os.environ.get('CMAKE_ARGS', '')}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def download_sdist(into: Path, log=print) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    found = sorted(into.glob(f"llama_cpp_python-{VERSION}.tar.gz"))
    if found:
        return found[0]
    log(f"downloading the {PACKAGE} {VERSION} source distribution ...")
    cmd = [sys.executable, "-m", "pip", "download", f"{PACKAGE}=={VERSION}", "--no-deps",
           "--no-binary", ":all:", "-d", str(into)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(into.glob(f"llama_cpp_python-{VERSION}.tar.gz"))
    if done.returncode or not found:
        why = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no file"]
        raise GGUFToolsMissing(
            f"could not download {PACKAGE} {VERSION} ({why[0]}). On a machine without the "
            f"registry, copy llama_cpp_python-{VERSION}.tar.gz here and run "
            f"`{INSTALL_HINT} --sdist PATH`."
        )
    return found[0]


def extract_converter(sdist: Path, into: Path) -> None:
    """Keep the converter's files from the sdist (written beside, then renamed into place)."""
    into.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".tools-", dir=into.parent))
    try:
        with tarfile.open(sdist, "r:gz") as tar:
            for member in tar:
                parts = member.name.split("/", 1)
                rest = parts[1] if len(parts) > 1 else ""
                if not rest.startswith("vendor/llama.cpp/") or not member.isfile():
                    continue
                inner = rest.removeprefix("vendor/llama.cpp/")
                if not any(
                    inner == m or (m.endswith("/") and inner.startswith(m))
                    for m in CONVERTER_MEMBERS
                ):
                    continue
                target = work / inner
                if ".." in Path(inner).parts:
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(member)
                if src is not None:
                    with src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out)
        if not (work / "convert_hf_to_gguf.py").is_file():
            raise GGUFToolsMissing(f"{sdist} holds no vendor/llama.cpp/convert_hf_to_gguf.py")
        (work / "SOURCE.json").write_text(
            json.dumps({"sdist": sdist.name, "sha256": file_sha256(sdist)}, indent=2)
        )
        if into.exists():
            shutil.rmtree(into)
        work.rename(into)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def install(sdist: Path | None = None, *, log=print) -> dict:
    """Install the GGUF extra into this Python: converter files, then the package built from
    the same sdist (or the wheel built from it before on this machine)."""
    root = cache_root()
    sdist = Path(sdist) if sdist else download_sdist(root / "download", log=log)
    if not sdist.is_file():
        raise GGUFToolsMissing(f"{sdist} is not a file")
    digest = file_sha256(sdist)
    tools = tools_dir()
    source = tools / "SOURCE.json"
    if not source.is_file() or json.loads(source.read_text()).get("sha256") != digest:
        log(f"keeping llama.cpp's converter from {sdist.name} in {tools}")
        extract_converter(sdist, tools)
    wheels = root / "wheels" / f"{digest[:16]}-{_machine_key()}"
    built = sorted(wheels.glob("llama_cpp_python-*.whl"))
    env = dict(os.environ)
    env["CMAKE_ARGS"] = " ".join(filter(None, [DEFAULT_CMAKE_ARGS, env.get("CMAKE_ARGS", "")]))
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
    if not built:
        log(f"building {sdist.name} (llama.cpp, C++): minutes ...")
        wheels.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", str(sdist), "-w", str(wheels)]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        built = sorted(wheels.glob("llama_cpp_python-*.whl"))
        if done.returncode or not built:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
            raise GGUFToolsMissing(
                f"building {sdist.name} failed (a C++ compiler and CMake are needed):\n{tail}"
            )
    else:
        log(f"using the wheel built before: {built[0].name}")
    here = Path(__file__).resolve().parents[2] / "requirements-gguf.txt"
    # The wheel first, replacing any other build of the same version; then its dependencies
    # and the extra's other packages.
    steps = [[str(built[0]), "--force-reinstall", "--no-deps"]]
    steps.append(["-r", str(here)] if here.is_file() else [str(built[0])])
    for step in steps:
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", *step]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
            raise GGUFToolsMissing(f"installing {built[0].name} failed:\n{tail}")
    return {"sdist": str(sdist), "tools": str(tools), "wheel": str(built[0]), "version": VERSION}


# --- runtime ----------------------------------------------------------------------------------
def llama_cpp():
    """The `llama_cpp` module (raises `GGUFToolsMissing` when it is not installed)."""
    if runtime_version() is None:
        require()
    import llama_cpp as module

    return module


QUANT_TYPES = {  # name -> llama_ftype (llama.h), in the order the Export tab offers them
    "f16": 1,
    "bf16": 32,
    "q8_0": 7,
    "q4_k_m": 15,
    "q5_k_m": 17,
    "q6_k": 18,
    "f32": 0,
}


def failure_tail(stderr: str, lines: int = 6) -> str:
    """llama.cpp's own words when it stopped a process (GGML_ASSERT, an error line), else the
    end of what it wrote."""
    found = [x for x in stderr.splitlines() if "GGML_ASSERT" in x or "error" in x.lower()]
    return "\n".join((found or stderr.strip().splitlines())[-lines:])


def quantize(source: Path, target: Path, quant: str) -> None:
    """llama.cpp's own quantizer (`llama_model_quantize`) from one GGUF to another, in a
    process of its own (llama.cpp ends a process on a tensor it cannot quantize)."""
    done = subprocess.run(
        [sys.executable, "-m", "studio.export.llama_cpp", "quantize", str(source), str(target),
         quant],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    if done.returncode or not target.is_file():
        tail = failure_tail(done.stderr)
        raise StudioError(
            f"llama.cpp could not quantize {source.name} to {quant}: {tail}",
            code="gguf_quantize_failed",
            quant=quant,
            tail=tail,
        )


def _quantize_here(source: Path, target: Path, quant: str, *, threads: int | None = None) -> None:
    lib = llama_cpp()
    params = lib.llama_model_quantize_default_params()
    params.ftype = QUANT_TYPES[quant]
    params.nthread = int(threads or max(1, (os.cpu_count() or 2) - 1))
    rc = lib.llama_model_quantize(str(source).encode(), str(target).encode(), ctypes.byref(params))
    if rc != 0 or not target.is_file():
        raise StudioError(f"llama.cpp could not quantize {source.name} to {quant} (code {rc})")


def silence() -> None:
    """llama.cpp writes its loading log to stderr; keep the studio's own output readable."""
    lib = llama_cpp()
    if getattr(silence, "done", False):
        return

    @lib.llama_log_callback
    def _quiet(level, text, user_data):  # noqa: ARG001
        return None

    silence.done = _quiet  # keep a reference: the C side calls it
    lib.llama_log_set(_quiet, ctypes.c_void_p(0))


def open_gguf(path: Path, *, n_ctx: int = 2048, logits_all: bool = False, threads=None,
              quiet: bool = True):  # fmt: skip
    """A `llama_cpp.Llama` over the GGUF file, on the CPU unless llama.cpp was built for a GPU.
    `quiet=False` (the check's own process) keeps llama.cpp's messages on stderr, where the
    reason for a failed load is read from."""
    lib = llama_cpp()
    if quiet:
        silence()
    return lib.Llama(
        model_path=str(path),
        n_ctx=n_ctx,
        logits_all=logits_all,
        n_threads=int(threads or max(1, (os.cpu_count() or 2) - 1)),
        seed=0,
        verbose=not quiet,
    )


def eog_ids(llm) -> set[int]:
    """Every id llama.cpp itself treats as the end of generation (EOS, EOT, and the end-of-turn
    tokens it recognises by name): what Ollama, LM Studio and llama-server stop on."""
    lib = llama_cpp()
    vocab = lib.llama_model_get_vocab(llm.model)
    return {i for i in range(llm.n_vocab()) if lib.llama_vocab_is_eog(vocab, i)}


if __name__ == "__main__":  # python -m studio.export.llama_cpp quantize SRC DST TYPE
    _, command, *args = sys.argv
    if command != "quantize":
        raise SystemExit(f"unknown command {command}")
    _quantize_here(Path(args[0]), Path(args[1]), args[2])
