# Stage 3 (DESIGN §3) on CPU: a prompt for a new downstream model -- here a
# small ViT classifier the restorer has never seen -- learns alone: every other
# weight of UniRestore (stage-1 parts, TFAs, the old prompts) is frozen and
# stays bit-identical, so the old tasks' outputs do not change.  Loss: 0.1 * CE
# through the frozen ViT (the ir L1 term has nothing to train here and is
# skipped).
#   python tools/train.py \
#       configs/mmpretrain/cls_vit-tiny-p4_1xb32-1k_clean-embedded.py
#   python tools/train.py \
#       configs/unirestore/stage3-new-prompt-vit_unirestore-tiny_1xb4-20it_embedded.py \
#       \
#       --cfg-options \
#       model.checkpoint=work_dirs/stage2_unirestore-tiny_1xb4-20it_embedded-3tasks/unirestore.safetensors  # noqa: E501
# For a new *task* with its own data, change the dataset and the task's type
# (cls or seg) and recognizer.
_base_ = [
    '../_base_/models/unirestore_tiny.py',
    '../_base_/stage_runtime.py',
    '../_base_/schedules/schedule_unirestore_20it.py',
]

batch_size = 4
embedded = dict(root=None, seed=0, size=32, n_train=4000, n_test=500)
# e.g.
# work_dirs/stage2_unirestore-tiny_1xb4-20it_embedded-3tasks/unirestore.safetensors
stage2_weights = None
# the new downstream model: the ViT that
# configs/mmpretrain/cls_vit-tiny-p4_1xb32-1k_clean-embedded.py trains on clean
# embedded images (its `model` is read from there)
vit_config = (
    '{{fileDirname}}/../mmpretrain/cls_vit-tiny-p4_1xb32-1k_clean-embedded.py'
)
vit_checkpoint = (
    'work_dirs/cls_vit-tiny-p4_1xb32-1k_clean-embedded/iter_1000.pth'
)
new_prompt = 'cls_vit'

model = dict(
    _delete_=True,
    type='unirestore_mm.TaskRestorer',
    restorer=dict(type='unirestore_mm.UniRestore', preset='tiny'),
    checkpoint=stage2_weights,
    # a zero prompt (or dict(cls_vit='cls') to start from the cls prompt)
    new_tasks=[new_prompt],
    trainable=['prompts'],
    trainable_prompts=[new_prompt],  # only this one learns
    recognizers=dict(
        vit=dict(config=vit_config, checkpoint=vit_checkpoint, frozen=True)
    ),
    tasks={
        new_prompt: dict(
            type='cls', recognizer='vit', weight=0.1, ir_weight=1.0
        )
    },
    task=new_prompt,
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
