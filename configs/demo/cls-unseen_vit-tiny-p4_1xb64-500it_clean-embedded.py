# An *unseen* classifier of the demo (never used in restorer training, only to
# evaluate): a transformer, mmpretrain's VisionTransformer (2 layers, 4-pixel
# patches) with its ViT head, trained on the clean embedded images (10
# classes).
#   python tools/train.py \
#       configs/demo/cls-unseen_vit-tiny-p4_1xb64-500it_clean-embedded.py
_base_ = ['./cls-seen_resnet18-w16-cifar_1xb64-500it_clean-embedded.py']

model = dict(
    _delete_=True,
    type='mmpretrain.ImageClassifier',
    backbone=dict(
        type='mmpretrain.VisionTransformer',
        arch=dict(
            embed_dims=64, num_layers=2, num_heads=4, feedforward_channels=128
        ),
        img_size=32,
        patch_size=4,
        out_type='cls_token',
        init_cfg=None,
    ),
    neck=None,
    head=dict(
        type='mmpretrain.VisionTransformerClsHead',
        num_classes=10,
        in_channels=64,
        loss=dict(type='mmpretrain.CrossEntropyLoss'),
    ),
)
data_preprocessor = dict(
    mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5], to_rgb=True
)
