# The schedule of the recognizers trained here on clean images (the classifiers
# and segmenters that the frozen-recognizer, stage-2 and stage-3 recipes train
# through), 1,000 iterations: AdamW lr 1e-3 (used as given: no lr_scaling),
# weight decay 0.01; one-cycle cosine with 10 % warm-up; the exact-resume
# iteration loop.
max_iters = 1000
train_cfg = dict(
    type='unirestore_mm.ExactResumeIterBasedTrainLoop', max_iters=max_iters
)
optim_wrapper = dict(
    constructor='unirestore_mm.SqrtScaledOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.01),
)
param_scheduler = [
    dict(type='unirestore_mm.OneCycleCosineLR', pct_start=0.1, by_epoch=False)
]
