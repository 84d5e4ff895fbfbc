# Frozen-recognizer training with any mmseg segmentor: the segmentor of an
# mmseg model-zoo config (PSPNet R-18-D8, its heads set to the embedded set's
# 11 classes and BN instead of SyncBN) and its checkpoint stay fixed and in
# eval mode; the tiny UniRestore's TFAs and seg prompt learn 0.1 * CE(mask,
# ignore 255) through it plus the L1 of the ir-prompt restoration.  Without a
# checkpoint the build stops with an error.
#   python tools/train.py \
#       configs/mmseg/pspnet-frozen-recognizer_r18-d8-unirestore-tiny_1xb4-20it_embedded.py \
#       \
#       --cfg-options \
#           model.recognizers.seg.checkpoint=work_dirs/recognizers/pspnet_r18_embedded.pth
# Full scale: the sd-turbo restorer,
# 'mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py'
# with its checkpoint and no cfg_options, Foggy Cityscapes
# (configs/_base_/datasets/foggy_cityscapes.py), 8 GPUs.
_base_ = [
    '../_base_/models/unirestore_tiny.py',
    '../_base_/stage_runtime.py',
    '../_base_/schedules/schedule_unirestore_20it.py',
]

batch_size = 4
embedded = dict(root=None, seed=0, size=32, n_train=4000, n_test=500)
recognizer_config = (
    'mmseg::pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py'
)
recognizer_checkpoint = 'work_dirs/recognizers/pspnet_r18_embedded.pth'
num_classes = 11

model = dict(
    _delete_=True,
    type='unirestore_mm.TaskRestorer',
    restorer=dict(type='unirestore_mm.UniRestore', preset='tiny'),
    checkpoint=None,
    trainable=['tfa', 'prompts'],
    trainable_prompts=['seg', 'ir'],
    recognizers=dict(
        seg=dict(
            config=recognizer_config,
            checkpoint=recognizer_checkpoint,
            frozen=True,
            cfg_options={
                'model.pretrained': None,
                'model.backbone.norm_cfg': dict(type='BN', requires_grad=True),
                'model.decode_head.norm_cfg': dict(
                    type='BN', requires_grad=True
                ),
                'model.auxiliary_head.norm_cfg': dict(
                    type='BN', requires_grad=True
                ),
                'model.decode_head.num_classes': num_classes,
                'model.auxiliary_head.num_classes': num_classes,
            },
        )
    ),
    tasks=dict(
        seg=dict(
            type='seg',
            recognizer='seg',
            weight=0.1,
            ir_weight=1.0,
            ignore_index=255,
        )
    ),
    task='seg',
    num_steps=1,
    seed=0,
    data_preprocessor=dict(
        type='unirestore_mm.PairedDataPreprocessor', bgr_to_rgb=True
    ),
)

train_dataloader = dict(
    batch_size=batch_size,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='unirestore_mm.DegradedDataset',
        dataset=dict(
            type='unirestore_mm.EmbeddedSegDataset',
            split='train',
            **embedded,
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='mmseg.LoadAnnotations'),
            ],
        ),
        pipeline=[
            dict(
                type='unirestore_mm.RandomDegradation',
                corruptions='imagenet_c',
                resize_short_side=None,
                seed=0,
            ),
            dict(
                type='unirestore_mm.PackRestorationInputs', sample_type='seg'
            ),
        ],
    ),
)
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None

# the paper's optimisation (schedule_unirestore_20it.py), its lr sqrt-scaled
# from batch 64 to this one
optim_wrapper = dict(lr_scaling=dict(batch_size=batch_size))
custom_hooks = [dict(type='unirestore_mm.TaskDataCheckHook')]
default_hooks = dict(checkpoint=dict(interval=10), logger=dict(interval=5))
