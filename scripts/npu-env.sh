#!/usr/bin/env bash
# Installs onnxruntime and its QNN execution provider (Qualcomm's HTP backend, which on x86_64
# Linux runs Qualcomm's HTP emulator) into .venv-qnn with pip, once, and prints the environment
# that points dbrt at their libraries:
#   eval "$(scripts/npu-env.sh)"
# Qualcomm's libraries may not be redistributed: they are installed here, never committed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=$root/.venv-qnn
# The versions the offload tests were checked with.
packages=(onnxruntime==1.32.0 onnxruntime-qnn==2.7.0)
if ! "$venv/bin/python" -c "import onnxruntime, onnxruntime_qnn" 2>/dev/null; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet "${packages[@]}" >&2
fi
"$venv/bin/python" - <<'PY'
import glob, os, onnxruntime, onnxruntime_qnn
capi = os.path.join(os.path.dirname(onnxruntime.__file__), "capi")
ort = sorted(glob.glob(os.path.join(capi, "libonnxruntime.so*")))[0]
print(f"export DBRT_ONNXRUNTIME_LIB={ort}")
print(f"export DBRT_QNN_EP_LIB={onnxruntime_qnn.get_library_path()}")
PY
