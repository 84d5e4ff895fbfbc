# The photographs bundled with scikit-image and scikit-learn (10 of them:
# astronaut, camera, chelsea, coffee, coins, rocket, the two motorcycle views,
# china, flower), written on first use under `$UNIRESTORE_DATA/sample_photos`
# or `<repo>/data/sample_photos`: no download.  No labels: benchmark a
# pretrained recognizer by its agreement with its own prediction on the clean
# photograph (`tools/benchmark.py --data photos --labels clean-prediction`).
# Each photograph is resized to a short side of 256 and centre-cropped to
# 256×256 before it is degraded (severity 3, seed 0 unless the benchmark sets
# them).
load_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmpretrain.ResizeEdge', scale=256, edge='short'),
    dict(type='mmpretrain.CenterCrop', crop_size=256),
]
test_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='unirestore_mm.DegradedDataset',
        dataset=dict(
            type='unirestore_mm.SamplePhotosDataset', pipeline=load_pipeline
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
                type='unirestore_mm.PackRestorationInputs', sample_type='base'
            ),
        ],
    ),
)
val_dataloader = test_dataloader
