# The demo's *seen* segmenter: the one UniRestore's `seg` prompt is trained
# through (frozen) in stage 2. mmseg's PSPNet R-18-D8 (ResNetV1c, dilated,
# pyramid pooling) at a quarter of its width (16-128 channels, BN), trained on
# the clean embedded images and masks (11 classes: background + 10 items); the
# pyramid pooling gives every pixel the whole-item context that tells the
# classes apart.  Its checkpoint records the class names.
#   python tools/train.py \
#       configs/demo/seg-seen_pspnet-r18-w16-d8_1xb32-500it_clean-embedded.py
_base_ = ['../mmseg/pspnet_r18-d8_1xb16-2k_clean-embedded.py']

max_iters = 500
model = dict(
    backbone=dict(stem_channels=16, base_channels=16),
    decode_head=dict(in_channels=128, channels=32),
    auxiliary_head=dict(in_channels=64, channels=16),
)
train_dataloader = dict(
    batch_size=32,
    dataset=dict(
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='mmseg.LoadAnnotations'),
            dict(type='mmseg.RandomFlip', prob=0.5),
            dict(type='mmseg.PackSegInputs'),
        ]
    ),
)
train_cfg = dict(max_iters=max_iters)
optim_wrapper = dict(optimizer=dict(lr=2e-3))
default_hooks = dict(checkpoint=dict(interval=max_iters))
