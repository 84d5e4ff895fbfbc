# The embedded set (no download; unirestore_mm/datasets/embedded.py) for
# restoration: clean 32×32 images degraded on the fly.  Built on first use
# under $UNIRESTORE_DATA or <repo>/data/embedded.  Training: the 15 ImageNet-C
# corruptions with the paper's severity probabilities, no resizing (the images
# are smaller than the paper's 128 short side).  Test: severity 3, seed 0.
#
# Folder layout: see unirestore_mm/datasets/embedded.py
# (images/{train,test}/NNNNN.png, masks/..., meta/{train,test}.txt,
# splits/{train,test}.txt).
embedded = dict(root=None, seed=0, size=32, n_train=4000, n_test=500)
corruptions = 'imagenet_c'

train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='unirestore_mm.EmbeddedRestorationDataset',
        split='train',
        **embedded,
        pipeline=[
            dict(type='unirestore_mm.LoadPairedImages'),
            dict(
                type='unirestore_mm.RandomDegradation',
                corruptions=corruptions,
                resize_short_side=None,
            ),
            dict(
                type='unirestore_mm.PackRestorationInputs', sample_type='base'
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
        type='unirestore_mm.EmbeddedRestorationDataset',
        split='test',
        **embedded,
        pipeline=[
            dict(type='unirestore_mm.LoadPairedImages'),
            dict(
                type='unirestore_mm.RandomDegradation',
                corruptions=corruptions,
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
