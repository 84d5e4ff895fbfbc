# Stage 1 (DESIGN §3) of the tiny UniRestore on the embedded set, long enough
# to learn and evaluated: CFRM, Controller and skip adapters under the weighted
# CFRM feature loss plus the latent x0 loss, on 32x32 images degraded on the
# fly by the 15 ImageNet-C corruptions; PSNR/SSIM at severity 3 every 500
# iterations.  Runs on CPU with no data preparation (the set is written on
# first use): about 6 minutes on 2 cores with OMP_NUM_THREADS=1.  The
# 20-iteration smoke version is stage1_unirestore-tiny_1xb4-20it_embedded.py;
# paper scale is stage1_unirestore-sd-turbo_8xb6-200k_div2k.py.
_base_ = [
    '../_base_/models/unirestore_tiny.py',
    '../_base_/datasets/embedded_restoration.py',
    '../_base_/stage_runtime.py',
    '../_base_/schedules/schedule_unirestore_1k.py',
]

batch_size = 16

model = dict(stage=1)
train_dataloader = dict(
    batch_size=batch_size,
    sampler=dict(_delete_=True, type='InfiniteSampler', shuffle=True),
)
val_dataloader = dict(batch_size=batch_size)
test_dataloader = dict(batch_size=batch_size)
val_evaluator = [
    dict(type='unirestore_mm.PSNR'),
    dict(type='unirestore_mm.SSIM'),
]
test_evaluator = val_evaluator

train_cfg = dict(val_interval=500)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# the paper's optimisation (schedule_unirestore_1k.py), its lr sqrt-scaled from
# batch 64 to this one
optim_wrapper = dict(lr_scaling=dict(batch_size=batch_size))
default_hooks = dict(checkpoint=dict(interval=500), logger=dict(interval=50))
