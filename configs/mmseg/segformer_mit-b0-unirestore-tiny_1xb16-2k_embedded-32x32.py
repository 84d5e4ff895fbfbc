# A transformer segmenter: mmseg's SegFormer MiT-B0 recipe bases
# (segformer/segformer_mit-b0_8xb2-160k_ade20k- 512x512.py: the same model and
# runtime bases, its AdamW schedule) with UniRestore in front of the
# MixVisionTransformer, on the embedded set (32x32, 11 classes, degraded
# images; written on first use).  Only `model.backbone` changes.  CPU-sized:
# the tiny restorer (frozen), BN, no ImageNet initialisation.
#   python tools/train.py \
#       configs/mmseg/segformer_mit-b0-unirestore-tiny_1xb16-2k_embedded-32x32.py
_base_ = [
    'mmseg::_base_/models/segformer_mit-b0.py',
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
        backbone_type='MixVisionTransformer',
        init_cfg=None,
        restorer=dict(type='unirestore_mm.UniRestore', preset='tiny'),
        restorer_checkpoint=None,
        task='seg',
        mean=mean,
        std=std,
        bgr_to_rgb=True,
        num_steps=1,
        freeze_restorer=True,
    ),
    decode_head=dict(num_classes=11, norm_cfg=norm_cfg),
)

train_dataloader = dict(batch_size=16)
val_dataloader = dict(batch_size=16)
test_dataloader = dict(batch_size=16)

max_iters = 2000
# the SegFormer recipe's optimiser: AdamW 6e-5, head lr x10, no decay on norms
# and positions
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=0.00006, betas=(0.9, 0.999), weight_decay=0.01
    ),
    paramwise_cfg=dict(
        custom_keys=dict(
            pos_block=dict(decay_mult=0.0),
            norm=dict(decay_mult=0.0),
            head=dict(lr_mult=10.0),
        )
    ),
)
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-6,
        by_epoch=False,
        begin=0,
        end=max_iters // 10,
    ),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        begin=max_iters // 10,
        end=max_iters,
        by_epoch=False,
    ),
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
