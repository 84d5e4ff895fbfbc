# Rain100L (synthetic light rain): real pairs, no synthetic degradation.
#
# Folder layout (data_root = 'data/Rain100L'; the common "input/target"
# arrangement, same file names):
#   data/Rain100L/train/input/1.png
#       data/Rain100L/train/target/1.png   (200 pairs)
#   data/Rain100L/test/input/1.png
#       data/Rain100L/test/target/1.png    (100 pairs)
# For the original naming (rain-001.png / norain-001.png) set
# lq_key_regex=r'rain-(\d+)' and gt_filename_tmpl='norain-{}'.
dataset_type = 'unirestore_mm.PairedImageDataset'
data_root = 'data/Rain100L'

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
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='train/input', gt_path='train/target'),
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
        test_mode=True,
        on_corrupt='raise',
        data_prefix=dict(img_path='test/input', gt_path='test/target'),
        pipeline=test_pipeline,
    ),
)
test_dataloader = val_dataloader
