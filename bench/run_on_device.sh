#!/usr/bin/env bash
# One `device` call's worth of GPU measurements: the throughput benchmark, then a decode profile.
# Logs go to $OUT (the device tool's folder) or bench/results/latest. Each part has its own limit
# so that a slow part cannot take the other's figures with it.
#
#   bash bench/run_on_device.sh          # at most 8.5 minutes (the last full run: 4.3); timeout_s 560
#   bash bench/run_on_device.sh grid     # the grid end to end (bench/grid_gpu.py) alone: at most
#                                        # GRID_LIMIT s (default 480); timeout_s 540; not yet run
#   bash bench/run_on_device.sh grid --plan   # the same with the model's plan first
#   bash bench/run_on_device.sh grid --plan --together --direct 0
#                                        # the plan's decodings of a prompt in one loop, without
#                                        # the backend's own rates (sooner)
#   bash bench/run_on_device.sh grid --ab-together --items 1500
#                                        # the plan alone, decodings apart then together, in one
#                                        # process on the same clips; timeout_s 570 with
#                                        # GRID_LIMIT=540
#   MODELS_LIMIT=150 bash bench/run_on_device.sh models --models af2 --n 64 --n-beam 32
#                                        # Audio Flamingo 2 on NVIDIA's code (carry .af2-code,
#                                        # .whl and bench/.qwen2-audio-processor): batches against
#                                        # one clip at a time; timeout_s 200; not yet run
#   bash bench/run_on_device.sh open     # every figure still open, in one call (timeout_s 560):
#                                        # the grid's plan decodings apart and together (800
#                                        # clips, at most 360 s: about 290 s estimated on an
#                                        # H100), Audio Flamingo 3 (at most 110 s),
#                                        # then Audio Flamingo 2 in what is left of OPEN_LIMIT
#                                        # (default 548 s) where .af2-code is carried and at least
#                                        # 80 s are left; each part's logs in a folder of its own
#   bash bench/run_on_device.sh models   # Audio Flamingo 3, the Omni thinker, Ultravox: fast path vs
#                                        # plain generate (bench/fast_path_models.py): at most
#                                        # MODELS_LIMIT s (default 420); timeout_s 480; not yet run
#
# Build Qwen's tokenizer here first (python -m bench.qwen_tokenizer) and name
# bench/.qwen2-audio-processor in the device call's carry: the prompts are then as long as the
# real model's (the first line of throughput.log says which tokenizer ran). Fetch the wheels of
# what the device's image lacks (bash bench/device_wheels.sh) and carry .whl as well.
set -o pipefail
# the wheels of bench/device_wheels.sh, where the call carried them: what the image lacks
if [ -d .whl ] && [ -z "${DEVICE_WHEELS_IN:-}" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH} DEVICE_WHEELS_IN=1
fi
# NVIDIA's Audio Flamingo 2 inference code, where the call carried it (.af2-code holding its
# inference_HF_pretrained folder): importable as the harness imports it (README, audio-flamingo-2)
if [ -d .af2-code/inference_HF_pretrained/src ]; then
    ln -sfn src .af2-code/inference_HF_pretrained/audio_flamingo_2
    export PYTHONPATH=$PWD/.af2-code/inference_HF_pretrained${PYTHONPATH:+:$PYTHONPATH}
fi
# every package the runs need, imported before any of them starts: a missing one costs seconds
python3 -c "import orjson, soundfile, xxhash, pandas, scipy, torch, transformers, harness.runner" \
    || { echo "a package is missing: run bash bench/device_wheels.sh here and carry .whl"; exit 1; }
out=${OUT:-bench/results/latest}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
if [ "${1:-}" = open ]; then
    # one part after another, each a run of this script with its own limit and folder, so that a
    # slow part cannot take the others' figures; the last gets what the first two left
    # (each part's exit status is printed; the call fails where one did: 124, its limit)
    start=$SECONDS failed=0
    part() {  # NAME LIMIT_VARIABLE SECONDS ARGS...: one part in $out/NAME, its exit status kept
        local name=$1 limit="$2=$3" rc
        shift 3
        env OUT="$out/$name" "$limit" bash "$0" "$@"
        rc=$?; echo "part $name: exit $rc"; [ "$rc" = 0 ] || failed=$rc
    }
    part grid GRID_LIMIT 360 grid --ab-together --items 800
    part af3 MODELS_LIMIT 110 models --models af3
    left=$(( ${OPEN_LIMIT:-548} - (SECONDS - start) ))
    if [ ! -d .af2-code/inference_HF_pretrained/src ]; then
        echo "Audio Flamingo 2 not run: NVIDIA's code was not carried (.af2-code)"
    elif [ "$left" -lt 80 ]; then
        echo "Audio Flamingo 2 not run: ${left} s left of OPEN_LIMIT, 80 needed"
    else
        part af2 MODELS_LIMIT "$left" models --models af2 --n 64 --n-beam 32
    fi
    echo "every part ended after $(( SECONDS - start )) s"
    exit "$failed"
fi
if [ "${1:-}" = grid ]; then
    shift
    timeout "${GRID_LIMIT:-480}" python3 -m bench.grid_gpu "$@" 2>&1 | tee "$out/grid.log"
    exit $?
fi
if [ "${1:-}" = models ]; then
    shift
    timeout "${MODELS_LIMIT:-420}" python3 -m bench.fast_path_models "$@" 2>&1 | tee "$out/models.log"
    exit $?
fi
timeout "${THROUGHPUT_LIMIT:-400}" python3 -m bench.gpu_throughput "$@" 2>&1 | tee "$out/throughput.log"
timeout "${PROFILE_LIMIT:-110}" python3 -m bench.profile_decode --batch 128 --steps 6 --rows 14 \
    --variants static:auto,static:matmul,prefill 2>&1 | tee "$out/profile.log"
