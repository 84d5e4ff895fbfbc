# The tiny prior, part 1 of 2: the `tiny` preset's VAE (diffusers
# AutoencoderKL: 4 levels, 8x down, 4 latent channels, the SD VAE at toy width)
# trained as an autoencoder on the clean embedded training images:
#   L1(decode(posterior sample), image) + 1e-6 * KL(posterior || N(0,
#       I)) per image element
# L1 as the pixel term of SD's own VAE (its LPIPS and GAN terms need weights
# from a hub); the KL weight is SD's (small: it costs no reconstruction, but
# keeps the posterior from collapsing to a point).  At the end the latent
# scaling factor is measured on 512 training images (1 / std of the latents, as
# the latent-diffusion recipe did for SD's 0.18215) and the prior is written as
# a diffusers folder <work_dir>/prior (vae/, unet/ -- still random here --,
# scheduler/, null_embedding.safetensors).  Part 2 trains the UNet on these
# latents:
#   OMP_NUM_THREADS=1 python tools/train.py \
#       configs/prior/vae_unirestore-tiny_1xb32-1k_embedded.py
#   OMP_NUM_THREADS=1 python tools/train.py \
#       configs/prior/unet_unirestore-tiny_1xb64-600it_embedded.py
_base_ = [
    '../_base_/stage_runtime.py',
    '../_base_/schedules/schedule_prior_1k.py',
]

batch_size = 32
embedded = dict(root=None, seed=0, size=32, n_train=4000, n_test=500)

model = dict(
    type='unirestore_mm.PriorVAEModel',
    preset='tiny',
    kl_weight=1e-6,
    data_preprocessor=dict(
        type='unirestore_mm.PairedDataPreprocessor', bgr_to_rgb=True
    ),
)

clean = [
    dict(type='unirestore_mm.LoadPairedImages'),
    dict(type='unirestore_mm.PackRestorationInputs', sample_type='base'),
]
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='unirestore_mm.EmbeddedRestorationDataset',
        split='train',
        **embedded,
        pipeline=[
            dict(type='unirestore_mm.LoadPairedImages'),
            dict(
                type='mmpretrain.RandomFlip', prob=0.5, direction='horizontal'
            ),
            dict(
                type='unirestore_mm.PackRestorationInputs', sample_type='base'
            ),
        ],
    ),
)
# reconstruction PSNR/SSIM on the clean embedded test images (the ceiling of
# UniRestore's latent path)
test_dataloader = dict(
    batch_size=100,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='unirestore_mm.EmbeddedRestorationDataset',
        split='test',
        **embedded,
        pipeline=clean,
    ),
)
val_dataloader = test_dataloader
val_evaluator = [
    dict(type='unirestore_mm.PSNR'),
    dict(type='unirestore_mm.SSIM'),
]
test_evaluator = val_evaluator

val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    checkpoint=dict(interval=500, export_restorer=None),
    logger=dict(interval=100),
)
custom_hooks = [dict(type='unirestore_mm.ExportPriorHook', folder='prior')]
