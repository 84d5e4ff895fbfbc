# mmseg's PSPNet R-18-D8 recipe
# (pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py: the same model,
# runtime and schedule bases) with UniRestore in front of the backbone, on the
# embedded set (32x32 masks of 10 item classes + background, degraded images;
# written on first use).  Only `model.backbone` changes: the recipe's ResNetV1c
# settings merge into the RestoredBackbone and go to the wrapped backbone.
# CPU-sized: the tiny restorer (frozen), BN instead of SyncBN, no ImageNet
# initialisation (nothing is downloaded).
#   python tools/train.py \
#       configs/mmseg/pspnet_r18-d8-unirestore-tiny_1xb16-2k_embedded-32x32.py
# Paper scale: replace the dataset base
# (../_base_/datasets/foggy_cityscapes.py) and the restorer.
_base_ = [
    'mmseg::_base_/models/pspnet_r50-d8.py',
    '../_base_/datasets/embedded_seg.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_20k.py',
]
custom_imports = dict(imports=['unirestore_mm'], allow_failed_imports=False)

mean = [123.675, 116.28, 103.53]
std = [58.395, 57.12, 57.375]
norm_cfg = dict(type='BN', requires_grad=True)
crop_size = (32, 32)

model = dict(
    data_preprocessor=dict(
        mean=mean, std=std, bgr_to_rgb=True, size=crop_size
    ),
    pretrained=None,
    backbone=dict(
        type='unirestore_mm.RestoredBackbone',
        # the recipe's backbone; its other keys are kept
        backbone_type='ResNetV1c',
        depth=18,
        norm_cfg=norm_cfg,
        restorer=dict(type='unirestore_mm.UniRestore', preset='tiny'),
        restorer_checkpoint=None,
        task='seg',
        mean=mean,
        std=std,
        bgr_to_rgb=True,
        num_steps=1,
        freeze_restorer=True,
    ),
    decode_head=dict(
        in_channels=512, channels=128, num_classes=11, norm_cfg=norm_cfg
    ),
    auxiliary_head=dict(
        in_channels=256, channels=64, num_classes=11, norm_cfg=norm_cfg
    ),
)

train_dataloader = dict(batch_size=16)
val_dataloader = dict(batch_size=16)
test_dataloader = dict(batch_size=16)

max_iters = 2000
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=1e-4,
        power=0.9,
        begin=0,
        end=max_iters,
        by_epoch=False,
    )
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=1000
)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(by_epoch=False, interval=1000, max_keep_ckpts=2),
)
env_cfg = dict(cudnn_benchmark=False)
randomness = dict(seed=0)
