# Demo stage 2 (DESIGN §3): the TFAs and the `ir`, `cls` and `seg` prompts of
# the tiny UniRestore learn the three tasks at once, through the demo's *seen*
# recognizers (frozen), with the paper's losses:
#   ir : 10 * L1(restored, clean)
#   cls: w * CE(classifier(restored under cls), label) + L1(restored under ir,
#       clean)
#   seg: w * CE(segmenter(restored under seg), mask)
#       + L1(restored under ir, clean)
# Each batch is one task's (TaskBatchSampler); the three tasks are drawn
# equally often (the embedded set gives each task the same 4,000 images, so the
# paper's per-data-set weights, which balance sets of very different sizes,
# have nothing to balance here).  Needs stage 1 (model.checkpoint) and the
# recognizers of configs/demo/cls-seen_* and seg-seen_*.  `tools/demo.py` runs
# the whole chain.
_base_ = ['../unirestore/stage2_unirestore-tiny_1xb4-20it_embedded-3tasks.py']

batch_size = 32
max_iters = 600
prior = 'work_dirs/unet_unirestore-tiny_1xb64-600it_embedded/prior'
stage1_weights = (
    'work_dirs/stage1_unirestore-tiny-prior_1xb32-400it_'
    'embedded/unirestore.safetensors'
)
cls_config = (
    'configs/demo/cls-seen_resnet18-w16-cifar_1xb64-500it_clean-embedded.py'
)
cls_checkpoint = (
    'work_dirs/cls-seen_resnet18-w16-cifar_1xb64-500it_clean-'
    'embedded/iter_500.pth'
)
seg_config = (
    'configs/demo/seg-seen_pspnet-r18-w16-d8_1xb32-500it_clean-embedded.py'
)
seg_checkpoint = (
    'work_dirs/seg-seen_pspnet-r18-w16-d8_1xb32-500it_clean-'
    'embedded/iter_500.pth'
)
corruptions = ['imagenet_c', 'weather']
task_weight = 0.1  # the paper's CE weight for cls and seg
degrade = [
    dict(
        type='unirestore_mm.RandomDegradation',
        corruptions=corruptions,
        resize_short_side=None,
    )
]

model = dict(
    restorer=dict(prior=dict(pretrained=prior)),
    checkpoint=stage1_weights,
    recognizers=dict(
        _delete_=True,
        cls=dict(config=cls_config, checkpoint=cls_checkpoint, frozen=True),
        seg=dict(config=seg_config, checkpoint=seg_checkpoint, frozen=True),
    ),
    tasks=dict(cls=dict(weight=task_weight), seg=dict(weight=task_weight)),
)
train_dataloader = dict(
    batch_size=batch_size,
    dataset=dict(
        weights=dict(ir=1.0, cls=1.0, seg=1.0),
        datasets=dict(
            ir=dict(
                pipeline=[
                    dict(type='unirestore_mm.LoadPairedImages'),
                    *degrade,
                    dict(
                        type='unirestore_mm.PackRestorationInputs',
                        sample_type='base',
                    ),
                ]
            ),
            cls=dict(
                pipeline=[
                    *degrade,
                    dict(
                        type='unirestore_mm.PackRestorationInputs',
                        sample_type='cls',
                    ),
                ]
            ),
            seg=dict(
                pipeline=[
                    *degrade,
                    dict(
                        type='unirestore_mm.PackRestorationInputs',
                        sample_type='seg',
                    ),
                ]
            ),
        ),
    ),
)
train_cfg = dict(max_iters=max_iters)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.01),
    clip_grad=dict(max_norm=1.0),
)
default_hooks = dict(checkpoint=dict(interval=500), logger=dict(interval=100))
