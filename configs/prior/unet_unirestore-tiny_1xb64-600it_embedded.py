# The tiny prior, part 2 of 2: the `tiny` preset's UNet (diffusers
# UNet2DConditionModel, cross-attention on a fixed empty-prompt embedding)
# trained as a latent denoiser on SD's scheduler: epsilon prediction at
# timesteps drawn uniformly from all 1000 (scaled-linear betas 0.00085-0.012,
# as SD 2.1 / SD-Turbo), on the clean embedded training images encoded by part
# 1's frozen VAE.  The null embedding is part 1's folder's (a fixed random
# tensor: the tiny prior has no text encoder, and UniRestore only ever feeds
# the empty prompt).  At the end the whole prior is written to
# <work_dir>/prior, which UniRestore loads exactly as it loads SD-Turbo:
#   UniRestore(preset='tiny',
#       prior=dict(pretrained='work_dirs/unet_unirestore-tiny_1xb64-600it_embedded/prior'))
# Run after part 1 (configs/prior/vae_unirestore-tiny_1xb32-1k_embedded.py), or
# point `vae_prior` elsewhere.
_base_ = ['./vae_unirestore-tiny_1xb32-1k_embedded.py']

batch_size = 64
max_iters = 600
vae_prior = 'work_dirs/vae_unirestore-tiny_1xb32-1k_embedded/prior'

model = dict(
    _delete_=True,
    type='unirestore_mm.PriorUNetModel',
    preset='tiny',
    prior=dict(pretrained=vae_prior),
    data_preprocessor=dict(
        type='unirestore_mm.PairedDataPreprocessor', bgr_to_rgb=True
    ),
)
train_dataloader = dict(batch_size=batch_size)
# the one-step reconstruction from t=499 (half the schedule), decoded: how much
# of the image the denoiser keeps
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(optimizer=dict(lr=1e-3))
custom_hooks = [
    dict(
        type='unirestore_mm.ExportPriorHook',
        folder='prior',
        measure_scaling=False,
    )
]
