# GoPro (motion blur): per-scene blur/ and sharp/ folders with the same frame
# names.
#
# Folder layout (data_root = 'data/GOPRO_Large'):
#   data/GOPRO_Large/train/GOPR0372_07_00/blur/000047.png
#       data/GOPRO_Large/train/GOPR0372_07_00/sharp/000047.png
#   data/GOPRO_Large/test/GOPR0384_11_00/blur/000001.png
#       data/GOPRO_Large/test/GOPR0384_11_00/sharp/000001.png
#   (blur_gamma/ folders are ignored: they do not match the regex.)
dataset_type = 'unirestore_mm.PairedImageDataset'
data_root = 'data/GOPRO_Large'

train_pipeline = [
    dict(type='unirestore_mm.LoadPairedImages'),
    dict(
        type='unirestore_mm.PairedRandomCrop',
        crop_size=256,
        keys=['img', 'gt_img'],
    ),
    dict(type='unirestore_mm.PackRestorationInputs', sample_type='base'),
]
test_pipeline = [
    dict(type='unirestore_mm.LoadPairedImages'),
    dict(type='unirestore_mm.PackRestorationInputs', sample_type='base'),
]
pairing = dict(lq_key_regex=r'(.+)/blur/(.+)', gt_filename_tmpl='{}/sharp/{}')
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='train', gt_path='train'),
        pipeline=train_pipeline,
        **pairing,
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
        data_prefix=dict(img_path='test', gt_path='test'),
        test_mode=True,
        on_corrupt='raise',
        pipeline=test_pipeline,
        **pairing,
    ),
)
test_dataloader = val_dataloader
