# Cityscapes with synthetic degradations (segmentation): degraded image, clean
# image and mask.  Training draws with the paper's sampling; validation uses
# severity 3 with seed 0.
#
# Folder layout (data_root = 'data/cityscapes'; mmseg's layout, labelTrainIds
# made by mmseg's tools/dataset_converters/cityscapes.py):
#   data/cityscapes/leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png
#   data/cityscapes/gtFine/train/aachen/aachen_000000_000019_gtFine_labelTrainIds.png
#   data/cityscapes/leftImg8bit/val/frankfurt/...
#       data/cityscapes/gtFine/val/frankfurt/...
data_root = 'data/cityscapes'
crop_size = (512, 1024)

train_load_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmseg.LoadAnnotations'),
    dict(
        type='mmseg.RandomResize',
        scale=(2048, 1024),
        ratio_range=(0.5, 2.0),
        keep_ratio=True,
    ),
    dict(type='mmseg.RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='mmseg.RandomFlip', prob=0.5),
]
test_load_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmseg.LoadAnnotations'),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='unirestore_mm.DegradedDataset',
        dataset=dict(
            type='mmseg.CityscapesDataset',
            data_root=data_root,
            data_prefix=dict(
                img_path='leftImg8bit/train', seg_map_path='gtFine/train'
            ),
            pipeline=train_load_pipeline,
        ),
        pipeline=[
            dict(
                type='unirestore_mm.RandomDegradation',
                corruptions='imagenet_c',
            ),
            dict(
                type='unirestore_mm.PackRestorationInputs', sample_type='seg'
            ),
        ],
    ),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='unirestore_mm.DegradedDataset',
        dataset=dict(
            type='mmseg.CityscapesDataset',
            data_root=data_root,
            test_mode=True,
            data_prefix=dict(
                img_path='leftImg8bit/val', seg_map_path='gtFine/val'
            ),
            pipeline=test_load_pipeline,
        ),
        on_corrupt='raise',
        pipeline=[
            dict(
                type='unirestore_mm.RandomDegradation',
                corruptions='imagenet_c',
                severity=3,
                resize_short_side=None,
                seed=0,
            ),
            dict(
                type='unirestore_mm.PackRestorationInputs', sample_type='seg'
            ),
        ],
    ),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='mmseg.IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
