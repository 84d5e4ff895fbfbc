# The embedded set for segmentation (11 classes: background + 10 items, 32×32):
# an mmseg BaseSegDataset wrapped so each sample has the degraded image, the
# clean image and the mask.  Training: the paper's sampling without resizing;
# test: severity 3, seed 0.
embedded = dict(root=None, seed=0, size=32, n_train=4000, n_test=500)
corruptions = 'imagenet_c'
load_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmseg.LoadAnnotations'),
]

train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='unirestore_mm.DegradedDataset',
        dataset=dict(
            type='unirestore_mm.EmbeddedSegDataset',
            split='train',
            **embedded,
            pipeline=load_pipeline,
        ),
        pipeline=[
            dict(
                type='unirestore_mm.RandomDegradation',
                corruptions=corruptions,
                resize_short_side=None,
            ),
            dict(
                type='unirestore_mm.PackRestorationInputs', sample_type='seg'
            ),
        ],
    ),
)
test_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='unirestore_mm.DegradedDataset',
        dataset=dict(
            type='unirestore_mm.EmbeddedSegDataset',
            split='test',
            **embedded,
            pipeline=load_pipeline,
        ),
        on_corrupt='raise',
        pipeline=[
            dict(
                type='unirestore_mm.RandomDegradation',
                corruptions=corruptions,
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
val_dataloader = test_dataloader
test_evaluator = dict(type='mmseg.IoUMetric', iou_metrics=['mIoU'])
val_evaluator = test_evaluator
