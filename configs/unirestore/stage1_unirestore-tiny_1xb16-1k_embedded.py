# Stage 1 (CFRM, Controller, skip adapters) of the tiny UniRestore on the embedded set: 32x32 images
# degraded on the fly by the 15 ImageNet-C corruptions; PSNR/SSIM at severity 3.  Runs on CPU with no data
# preparation (the set is written on first use).  Paper-scale data: replace the dataset base, e.g.
# configs/_base_/datasets/div2k.py, and the model base with unirestore_sd-turbo.py.
_base_ = [
    '../_base_/models/unirestore_tiny.py',
    '../_base_/datasets/embedded_restoration.py',
    '../_base_/default_runtime.py',
]

batch_size = 16
max_iters = 1000
lr = 1e-4 * (batch_size / 64)**0.5  # the paper's 1e-4 at batch 64, scaled by sqrt(batch / 64)

train_dataloader = dict(batch_size=batch_size)
val_dataloader = dict(batch_size=batch_size)
test_dataloader = dict(batch_size=batch_size)
val_evaluator = [dict(type='unirestore_mm.PSNR'), dict(type='unirestore_mm.SSIM')]
test_evaluator = val_evaluator

train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=500)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=lr, weight_decay=0.01))
# the paper's one-cycle cosine schedule: 10 % linear warm-up, then cosine decay
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=max_iters // 10),
    dict(type='CosineAnnealingLR', T_max=max_iters - max_iters // 10, eta_min=0.0, by_epoch=False,
         begin=max_iters // 10, end=max_iters),
]
