# The classifier that the frozen-recognizer recipe trains through: mmpretrain's
# CIFAR ResNet-18 (the model of 'mmpretrain::resnet/resnet18_8xb16_cifar10.py',
# no restorer) trained on the *clean* embedded images (10 classes).  Its
# checkpoints hold only tensors and plain values (weights_only-loadable) and
# record the class names, which the frozen-recognizer recipe checks against its
# data:
#   python tools/train.py \
#       configs/mmpretrain/cls_resnet18-cifar_1xb32-1k_clean-embedded.py
#   python tools/train.py \
#   configs/mmpretrain/cls-frozen-recognizer_resnet18-cifar-unirestore-tiny_1xb4-20it_embedded.py \
#       \
#       --cfg-options \
#       model.recognizers.cls.checkpoint=work_dirs/cls_resnet18-cifar_1xb32-1k_clean-embedded/iter_1000.pth  # noqa: E501
_base_ = [
    'mmpretrain::_base_/models/resnet18_cifar.py',
    '../_base_/datasets/embedded_cls.py',
    'mmpretrain::_base_/default_runtime.py',
    '../_base_/schedules/schedule_recognizer_1k.py',
]
custom_imports = dict(imports=['unirestore_mm'], allow_failed_imports=False)

data_preprocessor = dict(
    num_classes=10,
    mean=[125.307, 122.961, 113.8575],
    std=[51.5865, 50.847, 51.255],
    to_rgb=True,
)
train_dataloader = dict(
    _delete_=True,
    batch_size=32,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='unirestore_mm.EmbeddedClsDataset',
        split='train',
        root=None,
        seed=0,
        size=32,
        n_train=4000,
        n_test=500,
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='mmpretrain.PackInputs'),
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
    dict(type='mmpretrain.PackInputs'),
]
test_dataloader = dict(
    _delete_=True,
    batch_size=100,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='unirestore_mm.EmbeddedClsDataset',
        split='test',
        root=None,
        seed=0,
        size=32,
        n_train=4000,
        n_test=500,
        pipeline=test_pipeline,
    ),
)
test_cfg = dict()
test_evaluator = dict(type='mmpretrain.Accuracy', topk=(1,))

default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(
        _delete_=True,
        type='unirestore_mm.TrainedPartsCheckpointHook',
        interval=500,
        max_keep_ckpts=1,
        export_restorer=None,
    ),
)
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
