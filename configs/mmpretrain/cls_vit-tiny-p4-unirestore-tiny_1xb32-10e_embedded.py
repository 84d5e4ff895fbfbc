# A transformer classifier: mmpretrain's ViT recipe bases
# (_base_/models/vit-base-p16.py with the DeiT-tiny architecture, the
# AdamW/cosine schedule of the Swin/DeiT recipes) with UniRestore in front of
# the VisionTransformer, on the embedded set (32x32, 10 classes, degraded
# images; written on first use).  Patches of 4 pixels for the 32x32 images.
# CPU-sized: the tiny restorer, frozen.
#   python tools/train.py \
#       configs/mmpretrain/cls_vit-tiny-p4-unirestore-tiny_1xb32-10e_embedded.py
_base_ = [
    'mmpretrain::_base_/models/vit-base-p16.py',
    '../_base_/datasets/embedded_cls.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['unirestore_mm'], allow_failed_imports=False)

mean = [123.675, 116.28, 103.53]
std = [58.395, 57.12, 57.375]
# mmcv loads BGR
data_preprocessor = dict(num_classes=10, mean=mean, std=std, to_rgb=True)

model = dict(
    backbone=dict(
        type='unirestore_mm.RestoredBackbone',
        # the recipe's backbone; its other keys are kept
        backbone_type='VisionTransformer',
        arch='deit-tiny',
        img_size=32,
        patch_size=4,
        restorer=dict(type='unirestore_mm.UniRestore', preset='tiny'),
        restorer_checkpoint=None,
        task='cls',
        mean=mean,
        std=std,
        to_rgb=True,
        num_steps=1,
        freeze_restorer=True,
    ),
    head=dict(num_classes=10, in_channels=192),
)

train_dataloader = dict(batch_size=32)
val_dataloader = dict(batch_size=32)
test_dataloader = dict(batch_size=32)

optim_wrapper = dict(optimizer=dict(lr=1e-3), clip_grad=dict(max_norm=5.0))
# 10 epochs of the 4,000 embedded training images, counted in iterations
max_iters = 1250
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=125),
    dict(
        type='CosineAnnealingLR',
        eta_min=1e-5,
        by_epoch=False,
        begin=125,
        end=max_iters,
        T_max=max_iters - 125,
    ),
]
train_cfg = dict(
    _delete_=True,
    type='IterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=625,
)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(by_epoch=False, interval=625, max_keep_ckpts=2),
)
log_processor = dict(by_epoch=False)
auto_scale_lr = dict(base_batch_size=32)
randomness = dict(seed=0)
