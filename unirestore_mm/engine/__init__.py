"""Training machinery: safe checkpoints with exact resume, freezing, the
paper's optimisation, multi-task data, pictures of validation and test
samples."""

from .checkpoint import (
    TrainedPartsCheckpointHook,
    atomic_save_safetensors,
    atomic_torch_save,
    load_training_checkpoint,
    trained_keys,
    trained_state_dict,
)
from .hooks import FreezeHook, TaskDataCheckHook, TrainedPartsEMAHook
from .loops import ExactResumeIterBasedTrainLoop
from .multitask_data import MultiTaskDataset, TaskBatchSampler
from .optim import (
    BF16OptimWrapper,
    OneCycleCosineLR,
    SqrtScaledOptimWrapperConstructor,
    sqrt_scaled_lr,
)
from .tolerant_test import (
    AtomicDumpResults,
    SkipBadSamples,
    SkipBadSamplesTestLoop,
    drop_bad_samples_collate,
)
from .visualization_hook import (
    NoRestoredImageError,
    RestorationVisualizationHook,
    enable_test_pictures,
)

__all__ = [
    'AtomicDumpResults',
    'BF16OptimWrapper',
    'ExactResumeIterBasedTrainLoop',
    'FreezeHook',
    'MultiTaskDataset',
    'NoRestoredImageError',
    'OneCycleCosineLR',
    'RestorationVisualizationHook',
    'SkipBadSamples',
    'SkipBadSamplesTestLoop',
    'SqrtScaledOptimWrapperConstructor',
    'TaskBatchSampler',
    'TaskDataCheckHook',
    'TrainedPartsCheckpointHook',
    'TrainedPartsEMAHook',
    'atomic_save_safetensors',
    'atomic_torch_save',
    'drop_bad_samples_collate',
    'enable_test_pictures',
    'load_training_checkpoint',
    'sqrt_scaled_lr',
    'trained_keys',
    'trained_state_dict',
]
