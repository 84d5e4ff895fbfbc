# Runtime of unirestore_mm's own recipes (the restorer trained with
# UniRestoreModel).
default_scope = 'unirestore_mm'
custom_imports = dict(imports=['unirestore_mm'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=500, max_keep_ckpts=3
    ),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # degraded | restored | clean of the first 4 validation images at every
    # validation, through the visualizer below
    # (<work_dir>/<timestamp>/vis_data/vis_image/val_<index>_<name>_<iter>.png);
    # tools/test.py --show-dir turns on one picture per test image
    visualization=dict(
        type='unirestore_mm.RestorationVisualizationHook',
        draw=True,
        num_images=4,
    ),
)
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # gloo on CPU: --cfg-options env_cfg.dist_cfg.backend=gloo
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='unirestore_mm.RestorationVisualizer',
    vis_backends=vis_backends,
    name='visualizer',
)
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
