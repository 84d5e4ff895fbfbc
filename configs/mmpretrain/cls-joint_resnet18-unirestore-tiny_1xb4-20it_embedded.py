# Joint training through RestoredBackbone: mmpretrain's CIFAR ResNet-18 recipe
# with UniRestore in front of its backbone
# (cls_resnet18-unirestore-tiny_1xb32-10e_embedded.py), where the chosen
# restorer parts (TFAs and prompts) and the classifier learn together, each
# with its own learning rate (AdamW 1e-3 for the classifier, x0.1 for the
# restorer) and the classifier's CE weighted by `loss_weight`.  Iteration-based
# with the safe checkpoints and the exact-resume loop of the stage recipes.
#   python tools/train.py \
#       configs/mmpretrain/cls-joint_resnet18-unirestore-tiny_1xb4-20it_embedded.py
# Full scale: restorer=sd-turbo with restorer_checkpoint= the stage-2 weights,
# an ImageNet recipe, 8 GPUs.
_base_ = ['./cls_resnet18-unirestore-tiny_1xb32-10e_embedded.py']

batch_size = 4
max_iters = 20
restorer_lr_mult = 0.1
cls_loss_weight = 1.0

model = dict(
    backbone=dict(
        freeze_restorer=False, restorer_trainable=['tfa', 'prompts']
    ),
    head=dict(loss=dict(loss_weight=cls_loss_weight)),
)
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(_delete_=True, type='InfiniteSampler', shuffle=True),
)
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None

train_cfg = dict(
    _delete_=True,
    type='unirestore_mm.ExactResumeIterBasedTrainLoop',
    max_iters=max_iters,
)
optim_wrapper = dict(
    _delete_=True,
    constructor='unirestore_mm.SqrtScaledOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.01),
    paramwise_cfg=dict(
        custom_keys={'backbone.restorer': dict(lr_mult=restorer_lr_mult)}
    ),
)
param_scheduler = [
    dict(
        type='unirestore_mm.OneCycleCosineLR',
        pct_start=0.1,
        div_factor=10.0,
        by_epoch=False,
    )
]
default_hooks = dict(
    logger=dict(interval=5),
    checkpoint=dict(
        _delete_=True,
        type='unirestore_mm.TrainedPartsCheckpointHook',
        interval=10,
        max_keep_ckpts=2,
        # the jointly trained restorer, for RestoredBackbone or restore.py
        export_restorer='unirestore',
    ),
)
log_processor = dict(by_epoch=False)
auto_scale_lr = None
# several processes: the other tasks' prompts get no gradient in this recipe
model_wrapper_cfg = dict(
    type='MMDistributedDataParallel', find_unused_parameters=True
)
