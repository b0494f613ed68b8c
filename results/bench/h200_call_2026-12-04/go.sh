#!/usr/bin/env bash
# One device call: install the carried wheels, smoke the three kinds of run, then the grid 12 at a time
# until DEADLINE seconds after the start; then pack the run folders (no checkpoints, no W&B) into $OUT.
START=$(date +%s); DEADLINE=${DEADLINE:-540}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 9
export PYTHONPATH=/tmp/site:$PWD/src ATTN_ZOO_DATA=$PWD/.devdata ATTN_ZOO_CACHE=/tmp/cache ATTN_ZOO_RUNS=$PWD/runs
export WANDB_MODE=disabled OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1 HYDRA_FULL_ERROR=1
mkdir -p runs/logs; nvidia-smi -L; python3 -c "import torch, torchvision; print(torch.__version__, torchvision.__version__, torch.cuda.get_device_name())"
pack() { tar --exclude='*.pt' --exclude='wandb' -czf $OUT/runs.tar.gz runs; ls -la $OUT; }
smoke() { timeout 200 python3 -m attention_zoo.train $1 trainer=smoke trainer.deterministic=false experiment_name=smoke > runs/logs/smoke_$2.log 2>&1 || { echo "SMOKE $2 FAILED"; tail -30 runs/logs/smoke_$2.log; return 1; }; }
smoke "experiment=nonlocal_video_cpu video_nonlocal=nl5" video & a=$!
smoke "experiment=cifar_attention_cpu block=deformable_e3" cifar & b=$!
smoke "experiment=transformer_fast_en_de_cpu" mt & c=$!
cp .devrun/jobs.txt /tmp/jobs.txt
wait $a || sed -i '/nonlocal_video/d' /tmp/jobs.txt; wait $b || sed -i '/cifar_attention/d' /tmp/jobs.txt; wait $c || sed -i '/transformer/d' /tmp/jobs.txt
echo "smokes done after $(( $(date +%s) - START )) s; $(wc -l < /tmp/jobs.txt) jobs"
[ -s /tmp/jobs.txt ] || { pack; exit 3; }
left=$(( DEADLINE - ( $(date +%s) - START ) ))
echo "grid: $left s left"
nl -w1 -s' ' /tmp/jobs.txt | xargs -P 12 -L 1 bash -c 'n=$0; timeout '"$left"' python3 -m attention_zoo.train "$@" > runs/logs/job_$n.log 2>&1; echo "job $n rc=$? $(date +%T) $*"'
echo "grid stopped after $(( $(date +%s) - START )) s"
nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv
pack
