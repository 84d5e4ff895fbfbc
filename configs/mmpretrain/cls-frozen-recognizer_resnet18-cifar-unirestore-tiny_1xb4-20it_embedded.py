# Frozen-recognizer training with any mmpretrain classifier: the classifier of
# an mmpretrain model-zoo config (here ResNet-18 for 32x32 images, 10 classes)
# and its checkpoint stay fixed and in eval mode; the tiny UniRestore's TFAs
# and cls prompt learn 0.1 * CE through it plus the L1 of the ir-prompt
# restoration, on the embedded set (degraded on the fly).  Bring the
# classifier's weights (trained on clean embedded images, or your own
# dataset's): without a checkpoint the build stops with an error.
#   python tools/train.py \
#   configs/mmpretrain/cls-frozen-recognizer_resnet18-cifar-unirestore-tiny_1xb4-20it_embedded.py \
#       \
#       --cfg-options \
#           model.recognizers.cls.checkpoint=work_dirs/recognizers/resnet18_cifar_embedded.pth
# Full scale: restorer=dict(preset='sd-turbo', prior=dict(pretrained=...)),
# checkpoint= the stage-2 weights, recognizer config
# 'mmpretrain::resnet/resnet50_8xb32_in1k.py' with its checkpoint, ImageNet
# data, 8 GPUs.
_base_ = [
    '../_base_/models/unirestore_tiny.py',
    '../_base_/stage_runtime.py',
    '../_base_/schedules/schedule_unirestore_20it.py',
]

batch_size = 4
embedded = dict(root=None, seed=0, size=32, n_train=4000, n_test=500)
recognizer_config = 'mmpretrain::resnet/resnet18_8xb16_cifar10.py'
recognizer_checkpoint = 'work_dirs/recognizers/resnet18_cifar_embedded.pth'

model = dict(
    _delete_=True,
    type='unirestore_mm.TaskRestorer',
    restorer=dict(type='unirestore_mm.UniRestore', preset='tiny'),
    checkpoint=None,  # the stage-1 or stage-2 restorer weights
    # any of cfrm, controller, skip_adapters, tfa, prompts
    trainable=['tfa', 'prompts'],
    trainable_prompts=['cls', 'ir'],
    recognizers=dict(
        cls=dict(
            config=recognizer_config,
            checkpoint=recognizer_checkpoint,
            frozen=True,
        )
    ),
    tasks=dict(
        cls=dict(type='cls', recognizer='cls', weight=0.1, ir_weight=1.0)
    ),
    task='cls',
    num_steps=1,
    seed=0,
    data_preprocessor=dict(
        type='unirestore_mm.PairedDataPreprocessor', bgr_to_rgb=True
    ),
)

train_dataloader = dict(
    batch_size=batch_size,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='unirestore_mm.DegradedDataset',
        dataset=dict(
            type='unirestore_mm.EmbeddedClsDataset',
            split='train',
            **embedded,
            pipeline=[dict(type='LoadImageFromFile')],
        ),
        pipeline=[
            dict(
                type='unirestore_mm.RandomDegradation',
                corruptions='imagenet_c',
                resize_short_side=None,
                seed=0,
            ),
            dict(
                type='unirestore_mm.PackRestorationInputs', sample_type='cls'
            ),
        ],
    ),
)
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None

# the paper's optimisation (schedule_unirestore_20it.py), its lr sqrt-scaled
# from batch 64 to this one
optim_wrapper = dict(lr_scaling=dict(batch_size=batch_size))
custom_hooks = [dict(type='unirestore_mm.TaskDataCheckHook')]
default_hooks = dict(checkpoint=dict(interval=10), logger=dict(interval=5))
