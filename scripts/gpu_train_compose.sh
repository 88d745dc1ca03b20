#!/bin/bash
# Train both stages of the compose engine on a GPU machine from a segment store, the way the
# shipped checkpoint was made (emomusic/checkpoints/compose/*/MODEL_CARD.md).
#
# Here (with the data):   emomusic train vae --data DATA/pop909/POP909 --data DATA/vgmidi_2019_unlabelled/unlabelled \
#                             --data DATA/emopia --store .gpu/segments.npz --steps 1 -o /tmp/probe
#                         (and, to skip soft labelling there, run `emomusic train diffgan --vae /tmp/probe
#                          --store .gpu/segments.npz --steps 1 -o /tmp/probe_dg` once and copy
#                          .cache/compose_softlabels_*.npy to .gpu/cache/)
# There (repo + .gpu/):   bash scripts/gpu_train_compose.sh cuda 3.5 4.0 OUTDIR
#
# Arguments: device (cuda|cpu), VAE minutes, diffusion-GAN minutes, output folder (default
# $OUT or /tmp/out). Writes OUTDIR/vae.tar, OUTDIR/diffgan.tar (checkpoint folders without
# training state) and OUTDIR/log.txt. Needs only python3 with torch, numpy, safetensors,
# click, tqdm (accelerate optional): the segment store replaces the MIDI readers.
#
# To continue the shipped checkpoint instead of starting over (a later GPU session):
#   VAE_DIR=emomusic/checkpoints/compose/vae INIT=emomusic/checkpoints/compose/diffgan bash scripts/gpu_train_compose.sh cuda 0 10 OUTDIR
# VAE_DIR skips the VAE stage (that VAE is used; no vae.tar); INIT warm-starts the diffusion-GAN
# from that checkpoint (`train diffgan --init-from`: same generator, fresh discriminator).
set -u
DEV=${1:-cuda}; VMIN=${2:-3}; DMIN=${3:-4}; DEST=${4:-${OUT:-/tmp/out}}
STORE=${STORE:-.gpu/segments.npz}; CACHE=${CACHE:-.gpu/cache}; PY=${PYTHON:-python3}
VAE_DIR=${VAE_DIR:-}; INIT=${INIT:-}
mkdir -p "$DEST"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
R=$(mktemp -d)
LOG=$DEST/log.txt
{
  date
  nvidia-smi --query-gpu=name,memory.total --format=csv 2>&1 | tail -1
  "$PY" -c "import torch, numpy; print('torch', torch.__version__, 'numpy', numpy.__version__, 'cuda', torch.cuda.is_available())"
} >> "$LOG" 2>&1
if [ -n "$VAE_DIR" ]; then
  VAE="$VAE_DIR"; VRC=0; echo "vae skipped: using $VAE_DIR" >> "$LOG"
else
  VAE="$R/vae"
  "$PY" -m emomusic train vae --store "$STORE" -o "$VAE" --preset large --steps 200000 --max-minutes "$VMIN" \
    --device "$DEV" --cache "$CACHE" --no-resume >> "$LOG" 2>&1
  VRC=$?; echo "vae rc=$VRC" >> "$LOG"
  tar -C "$R" -cf "$DEST/vae.tar" --exclude=train_state.safetensors --exclude=train_state.json vae
fi
WARM=(); [ -n "$INIT" ] && WARM=(--init-from "$INIT")
"$PY" -m emomusic train diffgan --vae "$VAE" --store "$STORE" -o "$R/diffgan" --preset large --steps 200000 \
  --max-minutes "$DMIN" --device "$DEV" --cache "$CACHE" --workers 12 --no-resume "${WARM[@]}" >> "$LOG" 2>&1
DRC=$?; echo "diffgan rc=$DRC" >> "$LOG"
tar -C "$R" -cf "$DEST/diffgan.tar" --exclude=train_state.safetensors --exclude=train_state.json diffgan
date >> "$LOG"
tr '\r' '\n' < "$LOG" | grep -v "it/s\]$" | tail -20
[ "$VRC" -eq 0 ] && [ "$DRC" -eq 0 ]
