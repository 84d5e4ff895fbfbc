# CUB-200-2011 with ImageNet-C corruptions at severity 3 (fine-grained
# classification): degraded image, clean image and label per sample.
#
# Folder layout (data_root = 'data/CUB_200_2011'; mmpretrain's CUB layout, as
# distributed):
#   data/CUB_200_2011/images.txt
#       "<image id> <class folder>/<file>.jpg"
#   data/CUB_200_2011/image_class_labels.txt      "<image id> <class 1..200>"
#   data/CUB_200_2011/train_test_split.txt
#       "<image id> <1 = train, 0 = test>"
#   data/CUB_200_2011/images/001.Black_footed_Albatross/Black_Footed_Albatross_0001_796111.jpg
#       ...
data_root = 'data/CUB_200_2011'

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
train_degrade_pipeline = [
    dict(
        type='unirestore_mm.RandomDegradation',
        corruptions='imagenet_c',
        resize_short_side=None,
    ),
    dict(type='unirestore_mm.PackRestorationInputs', sample_type='cls'),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='unirestore_mm.DegradedDataset',
        dataset=dict(
            type='mmpretrain.CUB',
            data_root=data_root,
            split='train',
            pipeline=load_pipeline,
        ),
        pipeline=train_degrade_pipeline,
    ),
)
test_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='unirestore_mm.DegradedDataset',
        dataset=dict(
            type='mmpretrain.CUB',
            data_root=data_root,
            split='test',
            test_mode=True,
            pipeline=load_pipeline,
        ),
        on_corrupt='raise',
        pipeline=degrade_pipeline,
    ),
)
val_dataloader = test_dataloader
test_evaluator = dict(type='mmpretrain.Accuracy', topk=(1,))
val_evaluator = test_evaluator
