# ImageNet validation subset with ImageNet-C corruptions at severity 3
# (classification, DESIGN.md §3-4): each sample yields the degraded image
# (inputs), the clean image (data_sample.gt_img) and the label.
#
# Folder layout (data_root = 'data/imagenet'; mmpretrain's ImageNet layout):
#   data/imagenet/val/ILSVRC2012_val_00000001.JPEG ...
#   data/imagenet/meta/val.txt
#       "ILSVRC2012_val_00000001.JPEG 65" lines (file, class index)
# A subset: a shorter list (e.g. meta/val_subset.txt) as ann_file, or
# `indices=N` for the first N.  The training subset (the paper's 80k images)
# uses the same form with split 'train' and meta/train.txt
# ("n01440764/n01440764_10026.JPEG 0").
data_root = 'data/imagenet'
ann_file = 'meta/val.txt'

load_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmpretrain.ResizeEdge', scale=256, edge='short'),
    dict(type='mmpretrain.CenterCrop', crop_size=224),
]
degrade_pipeline = [
    dict(
        type='unirestore_mm.RandomDegradation',
        corruptions='imagenet_c',
        severity=3,
        resize_short_side=None,
        seed=0,
    ),
    dict(type='unirestore_mm.PackRestorationInputs', sample_type='cls'),
]
test_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='unirestore_mm.DegradedDataset',
        dataset=dict(
            type='mmpretrain.ImageNet',
            data_root=data_root,
            ann_file=ann_file,
            data_prefix='val',
            test_mode=True,
            pipeline=load_pipeline,
        ),
        on_corrupt='raise',
        pipeline=degrade_pipeline,
    ),
)
val_dataloader = test_dataloader
test_evaluator = dict(type='mmpretrain.Accuracy', topk=(1, 5))
val_evaluator = test_evaluator
