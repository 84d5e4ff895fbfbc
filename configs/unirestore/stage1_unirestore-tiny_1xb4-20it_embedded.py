# Stage 1 (DESIGN §3) on CPU: CFRM, Controller and skip adapters of the tiny
# UniRestore learn the weighted CFRM feature loss plus the latent x0 loss (t
# drawn from {249, 499, 749, 999, 999, 999}) on the embedded set (32x32, the 15
# ImageNet-C corruptions).  A smoke-sized run (20 iterations, ~1 minute on 2
# cores):
#   python tools/train.py \
#       configs/unirestore/stage1_unirestore-tiny_1xb4-20it_embedded.py
# Full scale: stage1_unirestore-sd-turbo_8xb6-200k_div2k.py.
_base_ = [
    '../_base_/models/unirestore_tiny.py',
    '../_base_/datasets/embedded_restoration.py',
    '../_base_/stage_runtime.py',
    '../_base_/schedules/schedule_unirestore_20it.py',
]

batch_size = 4

model = dict(stage=1)
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(_delete_=True, type='InfiniteSampler', shuffle=True),
)
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = dict(
    batch_size=batch_size, num_workers=0, persistent_workers=False
)
test_evaluator = [
    dict(type='unirestore_mm.PSNR'),
    dict(type='unirestore_mm.SSIM'),
]
test_cfg = dict(type='TestLoop')

# the paper's optimisation (schedule_unirestore_20it.py), its lr sqrt-scaled
# from batch 64 to this one
optim_wrapper = dict(lr_scaling=dict(batch_size=batch_size))
default_hooks = dict(checkpoint=dict(interval=10), logger=dict(interval=5))
