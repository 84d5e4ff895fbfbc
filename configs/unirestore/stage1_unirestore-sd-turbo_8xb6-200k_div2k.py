# Stage 1 at the paper's scale (DESIGN §3): CFRM, Controller and skip adapters
# on the SD-Turbo prior, 200k iterations, 8 GPUs x batch 6 = 48, AdamW 1e-4 at
# batch 64 scaled by sqrt(48 / 64), one-cycle cosine with 10 % warm-up, 512
# crops, fp32 (--amp for fp16 autocast with loss scaling;
# optim_wrapper.type=unirestore_mm.BF16OptimWrapper for bf16 on Ampere and
# newer).
#   bash tools/dist_train.sh \
#       configs/unirestore/stage1_unirestore-sd-turbo_8xb6-200k_div2k.py 8 \
#       --cfg-options model.restorer.prior.pretrained=/models/sd-turbo
# The paper's data is DIV2K + Flickr2K + OST (13,774 images);
# configs/_base_/datasets/div2k.py holds DIV2K, add the others to its dataset
# with a ConcatDataset.  Resume after any interruption with --resume.
_base_ = [
    '../_base_/models/unirestore_sd-turbo.py',
    '../_base_/datasets/div2k.py',
    '../_base_/stage_runtime.py',
    '../_base_/schedules/schedule_unirestore_200k.py',
]

batch_size = 6  # per GPU

model = dict(stage=1)
train_dataloader = dict(
    batch_size=batch_size,
    sampler=dict(_delete_=True, type='InfiniteSampler', shuffle=True),
)
val_evaluator = [
    dict(type='unirestore_mm.PSNR'),
    dict(type='unirestore_mm.SSIM'),
]
test_evaluator = val_evaluator
train_cfg = dict(val_interval=10000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# the paper's optimisation (schedule_unirestore_200k.py), its lr sqrt-scaled
# from batch 64 to this one
optim_wrapper = dict(lr_scaling=dict(batch_size=batch_size))
default_hooks = dict(checkpoint=dict(interval=5000))
env_cfg = dict(dist_cfg=dict(backend='nccl'))
