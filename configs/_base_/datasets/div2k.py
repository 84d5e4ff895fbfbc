# DIV2K (stage-1 restoration data, DESIGN.md §3): clean images, degraded on the
# fly with the paper's sampling (15 ImageNet-C corruptions, severity
# .05/.25/.40/.25/.05, random down-scale to a short side in [128, 512) and
# back), 512 crops.  Validation: the DIV2K validation images at severity 3,
# seed 0 (each index gets the same corruption in every run).
#
# Folder layout (data_root = 'data/DIV2K'):
#   data/DIV2K/DIV2K_train_HR/0001.png ... 0800.png
#   data/DIV2K/DIV2K_valid_HR/0801.png ... 0900.png
# Flickr2K and OST (the rest of the paper's 13,774 images) use the same
# clean-only form; add them with a ConcatDataset of
# PairedImageDataset(data_prefix=dict(gt_path=...)).
dataset_type = 'unirestore_mm.PairedImageDataset'
data_root = 'data/DIV2K'
crop_size = 512

train_pipeline = [
    dict(type='unirestore_mm.LoadPairedImages'),
    dict(
        type='unirestore_mm.PairedRandomCrop',
        crop_size=crop_size,
        keys=['img'],
    ),
    dict(
        type='unirestore_mm.RandomDegradation',
        corruptions='imagenet_c',
        severity_probs=(0.05, 0.25, 0.40, 0.25, 0.05),
        resize_short_side=(128, 512),
        seed=None,
    ),
    dict(type='unirestore_mm.PackRestorationInputs', sample_type='base'),
]
test_pipeline = [
    dict(type='unirestore_mm.LoadPairedImages'),
    dict(
        type='unirestore_mm.PairedRandomCrop',
        crop_size=crop_size,
        keys=['img'],
        seed=0,
    ),
    dict(
        type='unirestore_mm.RandomDegradation',
        corruptions='imagenet_c',
        severity=3,
        resize_short_side=None,
        seed=0,
    ),
    dict(type='unirestore_mm.PackRestorationInputs', sample_type='base'),
]
train_dataloader = dict(
    batch_size=6,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(gt_path='DIV2K_train_HR'),
        on_corrupt='skip',
        pipeline=train_pipeline,
    ),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(gt_path='DIV2K_valid_HR'),
        test_mode=True,
        on_corrupt='raise',
        pipeline=test_pipeline,
    ),
)
test_dataloader = val_dataloader
