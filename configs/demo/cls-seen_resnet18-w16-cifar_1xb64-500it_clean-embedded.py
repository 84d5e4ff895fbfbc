# The demo's *seen* classifier: the one UniRestore's `cls` prompt is trained
# through (frozen) in stage 2. mmpretrain's CIFAR ResNet-18 (ResNet_CIFAR, 3x3
# stem) at a quarter of its width (16-32-64-128 channels), trained on the clean
# embedded images (10 classes); its checkpoint records the class names.
#   python tools/train.py \
#       configs/demo/cls-seen_resnet18-w16-cifar_1xb64-500it_clean-embedded.py
_base_ = ['../mmpretrain/cls_resnet18-cifar_1xb32-1k_clean-embedded.py']

max_iters = 500
model = dict(
    backbone=dict(stem_channels=16, base_channels=16),
    head=dict(num_classes=10, in_channels=128),
)
train_dataloader = dict(
    batch_size=64,
    dataset=dict(
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(
                type='mmpretrain.RandomFlip', prob=0.5, direction='horizontal'
            ),
            dict(type='mmpretrain.PackInputs'),
        ]
    ),
)
train_cfg = dict(max_iters=max_iters)
optim_wrapper = dict(optimizer=dict(lr=2e-3))
default_hooks = dict(checkpoint=dict(interval=max_iters))
