# The "new downstream model" of the tiny stage-3 recipe: a 2-layer ViT with
# 4-pixel patches (mmpretrain's VisionTransformer and ViT head, no restorer)
# trained on the *clean* embedded images (10 classes).  Stage 3 then teaches
# UniRestore one new prompt for it, everything else frozen:
#   python tools/train.py \
#       configs/mmpretrain/cls_vit-tiny-p4_1xb32-1k_clean-embedded.py
#   python tools/train.py \
#       configs/unirestore/stage3-new-prompt-vit_unirestore-tiny_1xb4-20it_embedded.py \
#       \
#       --cfg-options \
#       model.checkpoint=work_dirs/stage2_unirestore-tiny_1xb4-20it_embedded-3tasks/unirestore.safetensors  # noqa: E501
# The stage-3 recipe reads this file's `model` as its recognizer config, so the
# two cannot drift apart.
_base_ = ['./cls_resnet18-cifar_1xb32-1k_clean-embedded.py']

model = dict(
    _delete_=True,
    type='mmpretrain.ImageClassifier',
    backbone=dict(
        type='mmpretrain.VisionTransformer',
        arch=dict(
            embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64
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
        in_channels=32,
        loss=dict(type='mmpretrain.CrossEntropyLoss'),
    ),
)
data_preprocessor = dict(
    mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5], to_rgb=True
)
