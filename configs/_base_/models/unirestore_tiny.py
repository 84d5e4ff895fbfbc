# The tiny UniRestore (random tiny SD-family prior, CPU-sized) trained as an
# MMEngine model.
model = dict(
    type='unirestore_mm.UniRestoreModel',
    restorer=dict(type='unirestore_mm.UniRestore', preset='tiny'),
    stage=1,
    task='ir',
    num_steps=1,
    seed=0,
    data_preprocessor=dict(
        type='unirestore_mm.PairedDataPreprocessor', bgr_to_rgb=True
    ),
)
