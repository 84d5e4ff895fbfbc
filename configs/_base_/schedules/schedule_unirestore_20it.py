# UniRestore's optimisation (the paper's, the same for every stage) over
# 20 iterations: the CPU smoke versions of the stage, frozen-recognizer and
# new-prompt recipes.  AdamW, lr 1e-4 at a total batch of 64 scaled by
# sqrt(total batch / 64) (total batch = the recipe's per-process batch x
# processes x accumulative_counts), weight decay 0.01; one-cycle cosine, 10 %
# warm-up from lr / 10; the exact-resume iteration loop (--resume continues
# data order and random state exactly).  A recipe that inherits it states its
# per-process batch, which the sqrt scaling reads:
#   optim_wrapper = dict(lr_scaling=dict(batch_size=batch_size))
max_iters = 20
train_cfg = dict(
    type='unirestore_mm.ExactResumeIterBasedTrainLoop', max_iters=max_iters
)
optim_wrapper = dict(
    constructor='unirestore_mm.SqrtScaledOptimWrapperConstructor',
    lr_scaling=dict(base_batch_size=64),
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.01),
)
param_scheduler = [
    dict(
        type='unirestore_mm.OneCycleCosineLR',
        pct_start=0.1,
        div_factor=10.0,
        by_epoch=False,
    )
]
