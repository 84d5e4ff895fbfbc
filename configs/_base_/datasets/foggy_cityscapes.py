# Foggy Cityscapes (real synthetic fog from depth, the paper's stage-2
# segmentation data): the foggy image, its clean Cityscapes original (loaded by
# path) and the mask.  No synthetic degradation.
#
# Folder layout (data_root = 'data/cityscapes'; the foggy images beside
# Cityscapes):
#   data/cityscapes/leftImg8bit_foggy/train/aachen/aachen_000000_000019_leftImg8bit_foggy_beta_0.02.png  # noqa: E501
#   data/cityscapes/leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png
#       (clean)
#   data/cityscapes/gtFine/train/aachen/aachen_000000_000019_gtFine_labelTrainIds.png
#   (val alike; beta 0.005 and 0.01 by changing `beta`.)
data_root = 'data/cityscapes'
beta = '0.02'
foggy_suffix = f'_leftImg8bit_foggy_beta_{beta}.png'

load_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='unirestore_mm.LoadCleanImage',
        replace=[
            (f'_foggy_beta_{beta}', ''),
            ('leftImg8bit_foggy/', 'leftImg8bit/'),
        ],
    ),
    dict(type='mmseg.LoadAnnotations'),
]
pack_pipeline = [
    dict(type='unirestore_mm.PackRestorationInputs', sample_type='seg')
]


def _split(split, test_mode):
    return dict(
        type='unirestore_mm.DegradedDataset',
        dataset=dict(
            type='mmseg.CityscapesDataset',
            data_root=data_root,
            img_suffix=foggy_suffix,
            data_prefix=dict(
                img_path=f'leftImg8bit_foggy/{split}',
                seg_map_path=f'gtFine/{split}',
            ),
            test_mode=test_mode,
            pipeline=load_pipeline,
        ),
        on_corrupt='raise' if test_mode else 'skip',
        pipeline=pack_pipeline,
    )


train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=_split('train', False),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=_split('val', True),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='mmseg.IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
