# mmpretrain's CIFAR ResNet-18 recipe (resnet/resnet18_8xb16_cifar10.py: the
# same model, schedule and runtime bases) with UniRestore in front of the
# backbone, on the embedded set (32x32, 10 classes, degraded images; written on
# first use).  Only `model.backbone` changes: the recipe's ResNet_CIFAR
# settings merge into the RestoredBackbone and go to the wrapped backbone.
# CPU-sized: the tiny restorer, frozen.
#   python tools/train.py \
#       configs/mmpretrain/cls_resnet18-unirestore-tiny_1xb32-10e_embedded.py
# Paper scale: replace the dataset base (e.g.
# ../_base_/datasets/imagenet_val_subset.py) and set model.backbone.restorer /
# restorer_checkpoint to the trained sd-turbo restorer.
_base_ = [
    'mmpretrain::_base_/models/resnet18_cifar.py',
    '../_base_/datasets/embedded_cls.py',
    'mmpretrain::_base_/schedules/cifar10_bs128.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['unirestore_mm'], allow_failed_imports=False)

mean = [125.307, 122.961, 113.8575]
std = [51.5865, 50.847, 51.255]
# mmcv loads BGR
data_preprocessor = dict(num_classes=10, mean=mean, std=std, to_rgb=True)

model = dict(
    backbone=dict(
        type='unirestore_mm.RestoredBackbone',
        # the recipe's backbone; its other keys are kept
        backbone_type='ResNet_CIFAR',
        restorer=dict(type='unirestore_mm.UniRestore', preset='tiny'),
        # e.g.
        # work_dirs/stage1_unirestore-tiny_1xb16-1k_embedded/unirestore.safetensors
        restorer_checkpoint=None,
        task='cls',
        mean=mean,
        std=std,
        to_rgb=True,
        num_steps=1,
        freeze_restorer=True,
    )
)

train_dataloader = dict(batch_size=32)
val_dataloader = dict(batch_size=32)
test_dataloader = dict(batch_size=32)

# 10 epochs of the 4,000 embedded training images, counted in iterations (so
# that --cfg-options train_cfg.max_iters=N shortens any shipped config the same
# way)
max_iters = 1250
optim_wrapper = dict(optimizer=dict(lr=0.05))
param_scheduler = dict(
    type='MultiStepLR', by_epoch=False, milestones=[750, 1000], gamma=0.1
)
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
