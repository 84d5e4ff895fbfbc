# Shared runtime of the stage recipes (stage1_*, stage2_*, stage3_*, and the
# *frozen* / *joint* recipes): not a recipe itself.  On top of
# configs/_base_/default_runtime.py it makes training safe to interrupt:
# - checkpoints hold the trained parts only, load with
#   torch.load(weights_only=True) (plus a .safetensors sidecar), are written
#   atomically, and the restorer is exported as
#   <work_dir>/unirestore.safetensors at the end (what the next stage's
#   `checkpoint=` reads);
# - `--resume` continues exactly: iteration, optimizer, scheduler, every
#   process's random state, data order (the exact-resume loop restores the
#   random state after advancing the data loader).
_base_ = ['./default_runtime.py']

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(
        _delete_=True,
        type='unirestore_mm.TrainedPartsCheckpointHook',
        interval=5000,
        max_keep_ckpts=2,
        safetensors=True,
        export_restorer='unirestore',
    ),
)
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=False)
# each process draws its own noise and timesteps (seed + rank); the samplers
# stay in step across processes
randomness = dict(seed=0, diff_rank_seed=True)
# Optional, beyond the paper: an EMA of the trained parts (no copy of the
# frozen prior), resumed exactly and applied to the exported restorer at the
# end:
#   custom_hooks = [dict(type='unirestore_mm.TrainedPartsEMAHook',
#       momentum=1e-4)]
# Mixed precision: --amp (fp16 with loss scaling on GPUs, bf16 autocast on the
#   CPU), or bf16 autocast on recent GPUs with --cfg-options
#   optim_wrapper.type=unirestore_mm.BF16OptimWrapper
# Gradient accumulation: --cfg-options optim_wrapper.accumulative_counts=N (the
# sqrt lr scaling counts it).
