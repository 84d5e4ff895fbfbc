# CBSD68 (colour denoising): pre-noised pairs at one noise level.
#
# Folder layout (data_root = 'data/CBSD68'):
#   data/CBSD68/original_png/0000.png ... 0067.png     clean
#   data/CBSD68/noisy25/0000.png ... 0067.png
#       Gaussian noise, sigma 25 (noisy15, noisy50 alike)
# Without a noisy folder, set data_prefix=dict(gt_path='original_png') and add
# dict(type='unirestore_mm.AddGaussianNoise', severity=3, seed=0) after loading
# (ImageNet-C levels).
dataset_type = 'unirestore_mm.PairedImageDataset'
data_root = 'data/CBSD68'
noise_folder = 'noisy25'

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
        data_prefix=dict(img_path=noise_folder, gt_path='original_png'),
        test_mode=True,
        on_corrupt='raise',
        pipeline=test_pipeline,
    ),
)
val_dataloader = test_dataloader
