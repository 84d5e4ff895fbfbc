# The demo's *unseen* segmenter (never used in restorer training, only to
# evaluate): a transformer, mmseg's SegFormer (MixVisionTransformer, 4 stages
# of 16-128 channels, stride-2 patch embeddings for 32x32 images, the all-MLP
# SegformerHead), trained on the clean embedded images and masks (11 classes).
#   python tools/train.py \
#       configs/demo/seg-unseen_segformer-mini_1xb32-500it_clean-embedded.py
_base_ = ['./seg-seen_pspnet-r18-w16-d8_1xb32-500it_clean-embedded.py']

model = dict(
    auxiliary_head=None,
    backbone=dict(
        _delete_=True,
        type='mmseg.MixVisionTransformer',
        in_channels=3,
        embed_dims=16,
        num_stages=4,
        num_layers=[1, 1, 2, 1],
        num_heads=[1, 2, 4, 8],
        patch_sizes=[3, 3, 3, 3],
        strides=[2, 2, 2, 2],
        sr_ratios=[4, 2, 1, 1],
        out_indices=(0, 1, 2, 3),
        mlp_ratio=4,
        qkv_bias=True,
        drop_rate=0.0,
        attn_drop_rate=0.0,
        drop_path_rate=0.0,
        init_cfg=None,
    ),
    decode_head=dict(
        _delete_=True,
        type='mmseg.SegformerHead',
        in_channels=[16, 32, 64, 128],
        in_index=[0, 1, 2, 3],
        channels=64,
        dropout_ratio=0.1,
        num_classes=11,
        norm_cfg=dict(type='BN', requires_grad=True),
        align_corners=False,
        loss_decode=dict(
            type='mmseg.CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0
        ),
    ),
)
