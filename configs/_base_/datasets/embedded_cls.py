# The embedded set for classification (10 Fashion-MNIST classes on
# photo/texture backgrounds, 32×32): an mmpretrain CustomDataset wrapped so
# each sample has the degraded image, the clean image (data_sample.gt_img) and
# the label.  Training: the paper's sampling without resizing; test: severity
# 3, seed 0.  For clean training of a recognizer use `clean_train_dataloader`
# (mmpretrain's PackInputs).
embedded = dict(root=None, seed=0, size=32, n_train=4000, n_test=500)
corruptions = 'imagenet_c'
load_pipeline = [dict(type='LoadImageFromFile')]

train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='unirestore_mm.DegradedDataset',
        dataset=dict(
            type='unirestore_mm.EmbeddedClsDataset',
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
                type='unirestore_mm.PackRestorationInputs', sample_type='cls'
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
            type='unirestore_mm.EmbeddedClsDataset',
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
                type='unirestore_mm.PackRestorationInputs', sample_type='cls'
            ),
        ],
    ),
)
val_dataloader = test_dataloader
clean_train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='unirestore_mm.EmbeddedClsDataset',
        split='train',
        **embedded,
        pipeline=load_pipeline + [dict(type='mmpretrain.PackInputs')],
    ),
)
test_evaluator = dict(type='mmpretrain.Accuracy', topk=(1,))
val_evaluator = test_evaluator
