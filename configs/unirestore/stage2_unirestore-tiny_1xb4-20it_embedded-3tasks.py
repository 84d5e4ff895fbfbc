# Stage 2 (DESIGN §3) on CPU: the TFAs and the task prompts of the tiny
# UniRestore learn three tasks at once on the embedded set, each batch drawn
# from one task's data with the paper's per-sample sampling weights:
#   ir : 10 * L1(restored, clean)
#   cls: 0.1 * CE(classifier(restored), label) + L1(restored under the ir
#       prompt, clean)
#   seg: 0.1 * CE(segmenter(restored), mask, ignore 255) + L1(restored under
#       the ir prompt, clean)
# through frozen recognizers (any mmpretrain / mmseg config + checkpoint; here
# library models of the embedded set's 10 and 11 classes, trained on clean
# embedded images first -- see below -- or your own).
#   python tools/train.py \
#       configs/unirestore/stage1_unirestore-tiny_1xb4-20it_embedded.py
#   python tools/train.py \
#       configs/mmpretrain/cls_resnet18-cifar_1xb32-1k_clean-embedded.py
#   python tools/train.py \
#       configs/mmseg/pspnet_r18-d8_1xb16-2k_clean-embedded.py
#   python tools/train.py \
#       configs/unirestore/stage2_unirestore-tiny_1xb4-20it_embedded-3tasks.py \
#       \
#       --cfg-options \
#       model.checkpoint=work_dirs/stage1_unirestore-tiny_1xb4-20it_embedded/unirestore.safetensors
# Full scale:
# stage2_unirestore-sd-turbo_8xb6-250k_imagenet-foggycityscapes-div2k.py.
_base_ = [
    '../_base_/models/unirestore_tiny.py',
    '../_base_/stage_runtime.py',
    '../_base_/schedules/schedule_unirestore_20it.py',
]

batch_size = 4
embedded = dict(root=None, seed=0, size=32, n_train=4000, n_test=500)
# e.g.
# work_dirs/stage1_unirestore-tiny_1xb4-20it_embedded/unirestore.safetensors
stage1_weights = None
# the recognizers: mmpretrain's CIFAR ResNet-18 and mmseg's PSPNet R-18-D8 (BN,
# 11 classes), trained on clean embedded images by
# configs/mmpretrain/cls_resnet18-cifar_1xb32-1k_clean-embedded.py and
# configs/mmseg/pspnet_r18-d8_1xb16-2k_clean-embedded.py
cls_config = 'mmpretrain::resnet/resnet18_8xb16_cifar10.py'
cls_checkpoint = (
    'work_dirs/cls_resnet18-cifar_1xb32-1k_clean-embedded/iter_1000.pth'
)
seg_config = 'mmseg::pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py'
seg_checkpoint = (
    'work_dirs/pspnet_r18-d8_1xb16-2k_clean-embedded/iter_2000.pth'
)
seg_options = {
    'model.pretrained': None,
    'model.backbone.norm_cfg': dict(type='BN', requires_grad=True),
    'model.decode_head.norm_cfg': dict(type='BN', requires_grad=True),
    'model.auxiliary_head.norm_cfg': dict(type='BN', requires_grad=True),
    'model.decode_head.num_classes': 11,
    'model.auxiliary_head.num_classes': 11,
}

model = dict(
    _delete_=True,
    type='unirestore_mm.TaskRestorer',
    restorer=dict(type='unirestore_mm.UniRestore', preset='tiny'),
    checkpoint=stage1_weights,
    trainable=['tfa', 'prompts'],
    recognizers=dict(
        cls=dict(config=cls_config, checkpoint=cls_checkpoint, frozen=True),
        seg=dict(
            config=seg_config,
            checkpoint=seg_checkpoint,
            cfg_options=seg_options,
            frozen=True,
        ),
    ),
    tasks=dict(
        ir=dict(type='ir', weight=10.0),
        cls=dict(type='cls', recognizer='cls', weight=0.1, ir_weight=1.0),
        seg=dict(
            type='seg',
            recognizer='seg',
            weight=0.1,
            ir_weight=1.0,
            ignore_index=255,
        ),
    ),
    task='ir',
    num_steps=1,
    seed=0,
    data_preprocessor=dict(
        type='unirestore_mm.PairedDataPreprocessor', bgr_to_rgb=True
    ),
)

degrade = [
    dict(
        type='unirestore_mm.RandomDegradation',
        corruptions='imagenet_c',
        resize_short_side=None,
        seed=0,
    )
]
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=0,
    persistent_workers=False,
    # the order comes from the batch sampler
    sampler=dict(type='DefaultSampler', shuffle=False),
    batch_sampler=dict(type='unirestore_mm.TaskBatchSampler'),
    dataset=dict(
        type='unirestore_mm.MultiTaskDataset',
        # the paper's per-sample weights: stage-1 set 1, ImageNet subset 0.2,
        # Foggy Cityscapes 10
        weights=dict(ir=1.0, cls=0.2, seg=10.0),
        datasets=dict(
            ir=dict(
                type='unirestore_mm.EmbeddedRestorationDataset',
                split='train',
                **embedded,
                pipeline=[
                    dict(type='unirestore_mm.LoadPairedImages'),
                    *degrade,
                    dict(
                        type='unirestore_mm.PackRestorationInputs',
                        sample_type='base',
                    ),
                ],
            ),
            cls=dict(
                type='unirestore_mm.DegradedDataset',
                dataset=dict(
                    type='unirestore_mm.EmbeddedClsDataset',
                    split='train',
                    **embedded,
                    pipeline=[dict(type='LoadImageFromFile')],
                ),
                pipeline=[
                    *degrade,
                    dict(
                        type='unirestore_mm.PackRestorationInputs',
                        sample_type='cls',
                    ),
                ],
            ),
            seg=dict(
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
                    *degrade,
                    dict(
                        type='unirestore_mm.PackRestorationInputs',
                        sample_type='seg',
                    ),
                ],
            ),
        ),
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
# several processes: each batch's task is the same on every process, but the
# other prompts get no gradient
model_wrapper_cfg = dict(
    type='MMDistributedDataParallel', find_unused_parameters=True
)
