# Snow100K (synthetic snow; UHDSnow uses the same degraded/clean folders with
# its own names).
#
# Folder layout (data_root = 'data/Snow100K'):
#   data/Snow100K/test/Snow100K-L/synthetic/beautiful_smile_00003.jpg
#   data/Snow100K/test/Snow100K-L/gt/beautiful_smile_00003.jpg
#   (Snow100K-S and -M alike; the set's mask/ folder is not used.)
dataset_type = 'unirestore_mm.PairedImageDataset'
data_root = 'data/Snow100K'
split = 'test/Snow100K-L'

test_pipeline = [
    dict(type='unirestore_mm.LoadPairedImages'),
    dict(type='unirestore_mm.PackRestorationInputs', sample_type='base'),
]
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path=split + '/synthetic', gt_path=split + '/gt'),
        test_mode=True,
        on_corrupt='raise',
        pipeline=test_pipeline,
    ),
)
val_dataloader = test_dataloader
