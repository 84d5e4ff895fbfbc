# A fixed degraded set written by
# tools/dataset_converters/make_benchmark_set.py, read back through its
# manifest.
#
# Folder layout (data_root = the --out folder; see
# unirestore_mm/datasets/benchmark.py):
#   <out>/manifest.json
#       sources, corruptions, severities, seeds, labels/masks
#   <out>/clean/<rel>.png
#   <out>/degraded/<corruption>/<severity>/<rel>.png
#   <out>/masks/<rel>.png                        (embedded sources only)
# Select part of it with select_degradation, e.g. dict(name=['fog', 'snow'],
# severity=3).
data_root = 'data/bench/embedded_c3'
select_degradation = None

test_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='unirestore_mm.PairedImageDataset',
        data_root=data_root,
        ann_file='manifest.json',
        data_prefix=dict(img_path='', gt_path='', seg_map_path=''),
        select_degradation=select_degradation,
        test_mode=True,
        on_corrupt='raise',
        pipeline=[
            dict(type='unirestore_mm.LoadPairedImages'),
            dict(
                type='unirestore_mm.PackRestorationInputs', sample_type='auto'
            ),
        ],
    ),
)
val_dataloader = test_dataloader
