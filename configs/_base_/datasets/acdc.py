# ACDC (real adverse conditions: fog, night, rain, snow) for segmentation.
# Real degradations, so no clean image: samples carry the image and the mask
# only.
#
# Folder layout (data_root = 'data/acdc'; as distributed, labelTrainIds masks):
#   data/acdc/rgb_anon/fog/val/GOPR0475/GOPR0475_frame_000041_rgb_anon.png
#   data/acdc/gt/fog/val/GOPR0475/GOPR0475_frame_000041_gt_labelTrainIds.png
#   (night, rain, snow alike; train alike.)
data_root = 'data/acdc'
conditions = ['fog', 'night', 'rain', 'snow']

test_load_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmseg.LoadAnnotations'),
]
pack_pipeline = [
    dict(type='unirestore_mm.PackRestorationInputs', sample_type='seg')
]


def _condition(cond, split):
    return dict(
        type='mmseg.CityscapesDataset',
        data_root=data_root,
        img_suffix='_rgb_anon.png',
        seg_map_suffix='_gt_labelTrainIds.png',
        test_mode=True,
        pipeline=test_load_pipeline,
        data_prefix=dict(
            img_path=f'rgb_anon/{cond}/{split}',
            seg_map_path=f'gt/{cond}/{split}',
        ),
    )


test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='unirestore_mm.DegradedDataset',
        on_corrupt='raise',
        pipeline=pack_pipeline,
        dataset=dict(
            type='ConcatDataset',
            datasets=[_condition(c, 'val') for c in conditions],
        ),
    ),
)
val_dataloader = test_dataloader
test_evaluator = dict(type='mmseg.IoUMetric', iou_metrics=['mIoU'])
val_evaluator = test_evaluator
