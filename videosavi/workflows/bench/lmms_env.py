"""Where LMMs-Eval lives: its own venv, found and asked what it is before any task runs.

LMMs-Eval's pins clash with ours (it needs av<16 and an exact wandb; constraints-lmms-eval.txt says
which and why), so it runs in a venv of its own that `make bench-env` creates, and `savi bench` drives
it as a subprocess. The venv is found from `--lmms-eval`, else `$VIDEOSAVI_LMMS_EVAL`, else
`.venv-lmms-eval` in the current folder or in the checkout videosavi runs from. One short probe asks
that Python for the installed LMMs-Eval version (its results files say `unknown`), where the package is
(its task YAMLs are read from there) and whether torch sees a GPU, without importing LMMs-Eval itself
(which takes tens of seconds).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from videosavi.errors import BenchError

ENV_VAR = "VIDEOSAVI_LMMS_EVAL"
DEFAULT_VENV = ".venv-lmms-eval"
MAKE_HINT = "run `make bench-env` (it creates .venv-lmms-eval), or pass --lmms-eval PATH/TO/VENV"
PROBE_TIMEOUT_S = 180.0

_PROBE = """
import importlib.metadata, importlib.util, json, sys
from pathlib import Path
spec = importlib.util.find_spec("lmms_eval")
if spec is None or spec.origin is None:
    print(json.dumps({"missing": "lmms_eval"}))
    raise SystemExit(0)
try:
    import torch
    cuda = bool(torch.cuda.is_available())
except Exception as exc:
    print(json.dumps({"missing": "torch: " + str(exc)[:200]}))
    raise SystemExit(0)
print(json.dumps({"version": importlib.metadata.version("lmms-eval"), "package_dir": str(Path(spec.origin).parent),
                  "cuda": cuda, "python": sys.version.split()[0]}))
"""


@dataclass(frozen=True)
class LmmsEval:
    """An LMMs-Eval installation that answered the probe."""

    python: Path
    version: str
    package_dir: Path
    cuda: bool

    @property
    def tasks_dir(self) -> Path:
        return self.package_dir / "tasks"


def _python_of(path: Path) -> Path:
    """A venv folder -> its bin/python; a file is taken as the interpreter itself."""
    return path / "bin" / "python" if path.is_dir() else path


def find_python(given: Path | str | None = None) -> Path:
    """The interpreter of the LMMs-Eval venv; BenchError naming where it looked when there is none."""
    if given is not None:
        python = _python_of(Path(given).expanduser())
        if not python.is_file():
            raise BenchError(f"LMMs-Eval is not installed at {given} (no {python}): {MAKE_HINT}")
        return python
    env = os.environ.get(ENV_VAR)
    if env:
        python = _python_of(Path(env).expanduser())
        if not python.is_file():
            raise BenchError(f"${ENV_VAR} is {env}, which holds no Python: {MAKE_HINT}")
        return python
    checkout = Path(__file__).resolve().parents[3]  # the checkout of an editable install
    looked = [Path.cwd() / DEFAULT_VENV, checkout / DEFAULT_VENV]
    for venv in looked:
        if (venv / "bin" / "python").is_file():
            return venv / "bin" / "python"
    raise BenchError(f"LMMs-Eval is not installed (no {DEFAULT_VENV} in {looked[0].parent}, no ${ENV_VAR}): "
                     f"{MAKE_HINT}")


def probe(python: Path) -> LmmsEval:
    """Ask `python` for its LMMs-Eval; BenchError if it has none or cannot answer."""
    try:
        proc = subprocess.run([str(python), "-c", _PROBE], capture_output=True, text=True, timeout=PROBE_TIMEOUT_S,
                              env={**os.environ, "PYTHONWARNINGS": "ignore"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BenchError(f"cannot run {python} to find LMMs-Eval ({type(exc).__name__}: {exc}): {MAKE_HINT}") from exc
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1][:300]
        raise BenchError(f"{python} could not be asked about LMMs-Eval (exit {proc.returncode}: {last}): {MAKE_HINT}")
    info = json.loads(lines[-1])
    if "missing" in info:
        raise BenchError(f"LMMs-Eval is not installed in {python} ({info['missing']} not found): {MAKE_HINT}")
    return LmmsEval(python=python, version=str(info["version"]), package_dir=Path(info["package_dir"]),
                    cuda=bool(info["cuda"]))


def find_lmms_eval(given: Path | str | None = None) -> LmmsEval:
    return probe(find_python(given))
