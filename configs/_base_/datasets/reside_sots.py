# RESIDE SOTS (haze): several hazy images per clean one, matched by the leading
# number.
#
# Folder layout (data_root = 'data/RESIDE/SOTS/outdoor'; indoor is the same
# with names like 1400_1.png):
#   data/RESIDE/SOTS/outdoor/hazy/0001_0.8_0.2.jpg
#       (<id>_<airlight>_<beta>.jpg)
#   data/RESIDE/SOTS/outdoor/gt/0001.png
dataset_type = 'unirestore_mm.PairedImageDataset'
data_root = 'data/RESIDE/SOTS/outdoor'

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
        data_prefix=dict(img_path='hazy', gt_path='gt'),
        lq_key_regex=r'(\d+)_.*',
        gt_filename_tmpl='{}',
        test_mode=True,
        on_corrupt='raise',
        pipeline=test_pipeline,
    ),
)
val_dataloader = test_dataloader
