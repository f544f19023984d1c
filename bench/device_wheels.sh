#!/usr/bin/env bash
# The packages the harness needs that the device machine's image lacks, as wheels for its Python
# (3.12), into the ignored .whl/ folder. Run it here (pip reaches the registry; the device cannot),
# then name `.whl` in the device call's carry: bench/run_on_device.sh installs them first.
#
#   bash bench/device_wheels.sh
#
# Which ones: the harness's dependencies (pyproject.toml) against the image's package list (the
# device library's KINDS.md, read 2026-11-30): soundfile (with cffi and pycparser) and orjson are
# not there; numpy, scipy, pandas, matplotlib, jinja2, xxhash, torch, transformers, safetensors and
# pyyaml are. One version of each: two of one package stop the whole install there. For Audio
# Flamingo 2 on NVIDIA's code (bench.fast_path_models --models af2), what its CLAP needs beyond
# the image's torchaudio, torchvision and einops: torchlibrosa and librosa (with audioread,
# decorator, pooch, platformdirs and soxr) and einops_exts, about 0.7 MB in all.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
    -d .whl orjson==3.13.0 soundfile==0.14.0 cffi==2.1.1 pycparser==3.12 \
    torchlibrosa==0.1.0 librosa==0.11.0 audioread==3.1.0 decorator==5.3.1 pooch==1.9.0 \
    platformdirs==4.14.9 soxr==1.1.0 einops-exts==0.0.4
ls -l .whl
