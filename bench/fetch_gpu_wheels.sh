#!/usr/bin/env bash
# Fetch, on a machine with registry access, the wheels bench/gpu_check.py can use on a GPU
# machine without one (Python 3.12, Linux x86_64, torch and CUDA from the machine's image).
# They go to .whl/ (ignored by git) and travel with the working tree; on the GPU machine:
#
#   python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
#   PYTHONPATH=/tmp/site:$PWD python3 bench/gpu_check.py --out $OUT
#
# Only what such an image lacks: the studio's own pins (peft, trl, datasets and theirs,
# bitsandbytes), Liger Kernel, and unsloth with unsloth-zoo. flash-attn has no wheel on
# PyPI (its release wheels are built per torch and CUDA on GitHub): it is reported, not
# fetched. The carry limit of the device tool is 64 MiB; the sizes are printed against it.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${DEST:-.whl}
PY=${PY:-3.12}
mkdir -p "$DEST"
fetch() {
  python -m pip download -q --no-deps --only-binary=:all: --python-version "$PY" \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform any \
    -d "$DEST" "$1" 2>/dev/null || echo "could not fetch: $1" >&2
}
for pkg in peft==0.21.2 trl==1.15.0 datasets==4.8.5 dill==0.4.0 multiprocess==0.70.18 \
  galore-torch==1.0 bitsandbytes==0.50.2 liger-kernel==0.8.5 unsloth==2026.10.5 \
  unsloth-zoo==2026.10.7; do
  fetch "$pkg"
done
echo "flash-attn: no wheel on PyPI; install it on the GPU machine from a wheel built for its torch and CUDA, or go without" >&2
total=$(du -cb "$DEST"/*.whl | tail -1 | cut -f1)
ls -la "$DEST"/*.whl | awk '{printf "%8.1f MiB  %s\n", $5/1048576, $9}'
printf 'total %.1f MiB (the device carry limit is 64 MiB)\n' "$(echo "$total/1048576" | bc -l)"
if [ "$total" -gt $((64 * 1048576)) ]; then
  echo "over the limit: carry bitsandbytes repacked with only its cpu and the machine's CUDA" \
    "libraries (see bench/gpu_train.py), or leave it out and the QLoRA checks say so" >&2
fi
