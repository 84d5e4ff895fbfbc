# The schedule of the tiny prior trained from scratch (configs/prior/: its VAE,
# then its UNet), 1,000 iterations: a far larger step than the restorer's
# fine-tuning, AdamW lr 2e-3 (used as given), weight decay 0.01, gradients
# clipped to norm 1; one-cycle cosine with 5 % warm-up from lr / 10; the
# exact-resume iteration loop, validating once, at the end.
max_iters = 1000
train_cfg = dict(
    type='unirestore_mm.ExactResumeIterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=max_iters,
)
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.01),
    clip_grad=dict(max_norm=1.0),
)
param_scheduler = [
    dict(
        type='unirestore_mm.OneCycleCosineLR',
        pct_start=0.05,
        div_factor=10.0,
        by_epoch=False,
    )
]
