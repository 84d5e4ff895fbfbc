# UniRestore at the paper's scale: the SD-Turbo prior from a local diffusers
# folder (no download here: set the path, e.g. --cfg-options
# model.restorer.prior.pretrained=/models/sd-turbo).
sd_turbo_path = 'checkpoints/sd-turbo'
model = dict(
    type='unirestore_mm.UniRestoreModel',
    restorer=dict(
        type='unirestore_mm.UniRestore',
        preset='sd-turbo',
        prior=dict(pretrained=sd_turbo_path),
    ),
    stage=1,
    task='ir',
    num_steps=1,
    seed=0,
    data_preprocessor=dict(
        type='unirestore_mm.PairedDataPreprocessor', bgr_to_rgb=True
    ),
)
