# The segmentor that the frozen-recognizer recipe trains through: mmseg's
# PSPNet R-18-D8 (the model of
# 'mmseg::pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py' with the frozen
# recipe's cfg_options: BN, 11 classes, no ImageNet initialisation) trained on
# the *clean* embedded images and masks.  Its checkpoints hold only tensors and
# plain values (weights_only-loadable) and record the class names:
#   python tools/train.py \
#       configs/mmseg/pspnet_r18-d8_1xb16-2k_clean-embedded.py
#   python tools/train.py \
#       configs/mmseg/pspnet-frozen-recognizer_r18-d8-unirestore-tiny_1xb4-20it_embedded.py \
#       \
#       --cfg-options \
#       model.recognizers.seg.checkpoint=work_dirs/pspnet_r18-d8_1xb16-2k_clean-embedded/iter_2000.pth  # noqa: E501
_base_ = ['mmseg::pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py']
custom_imports = dict(imports=['unirestore_mm'], allow_failed_imports=False)

max_iters = 2000
num_classes = 11
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    pretrained=None,
    data_preprocessor=dict(size=(32, 32)),
    backbone=dict(norm_cfg=norm_cfg),
    decode_head=dict(norm_cfg=norm_cfg, num_classes=num_classes),
    auxiliary_head=dict(norm_cfg=norm_cfg, num_classes=num_classes),
)
train_dataloader = dict(
    _delete_=True,
    batch_size=16,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='unirestore_mm.EmbeddedSegDataset',
        split='train',
        root=None,
        seed=0,
        size=32,
        n_train=4000,
        n_test=500,
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='mmseg.LoadAnnotations'),
            dict(type='mmseg.PackSegInputs'),
        ],
    ),
)
val_dataloader = None
val_cfg = None
val_evaluator = None
# Testing on the clean test split (what tools/test.py and tools/benchmark.py
# read: the test pipeline and evaluator).
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmseg.LoadAnnotations'),
    dict(type='mmseg.PackSegInputs'),
]
test_dataloader = dict(
    _delete_=True,
    batch_size=100,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='unirestore_mm.EmbeddedSegDataset',
        split='test',
        root=None,
        seed=0,
        size=32,
        n_train=4000,
        n_test=500,
        pipeline=test_pipeline,
    ),
)
test_cfg = dict(_delete_=True, type='TestLoop')
test_evaluator = dict(
    _delete_=True, type='mmseg.IoUMetric', iou_metrics=['mIoU']
)

train_cfg = dict(
    _delete_=True,
    type='unirestore_mm.ExactResumeIterBasedTrainLoop',
    max_iters=max_iters,
)
optim_wrapper = dict(
    _delete_=True,
    constructor='unirestore_mm.SqrtScaledOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.01),
)
param_scheduler = [
    dict(type='unirestore_mm.OneCycleCosineLR', pct_start=0.1, by_epoch=False)
]
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(
        _delete_=True,
        type='unirestore_mm.TrainedPartsCheckpointHook',
        interval=1000,
        max_keep_ckpts=1,
        export_restorer=None,
    ),
)
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
