"""Training machinery: safe checkpoints with exact resume, freezing, the paper's optimisation, multi-task data."""
from .checkpoint import (TrainedPartsCheckpointHook, atomic_save_safetensors, atomic_torch_save,
                         load_training_checkpoint, trained_keys, trained_state_dict)
from .hooks import FreezeHook, TaskDataCheckHook, TrainedPartsEMAHook
from .loops import ExactResumeIterBasedTrainLoop
from .multitask_data import MultiTaskDataset, TaskBatchSampler
from .optim import BF16OptimWrapper, OneCycleCosineLR, SqrtScaledOptimWrapperConstructor, sqrt_scaled_lr

__all__ = [
    'BF16OptimWrapper', 'ExactResumeIterBasedTrainLoop', 'FreezeHook', 'MultiTaskDataset', 'OneCycleCosineLR',
    'SqrtScaledOptimWrapperConstructor', 'TaskBatchSampler', 'TaskDataCheckHook', 'TrainedPartsCheckpointHook',
    'TrainedPartsEMAHook', 'atomic_save_safetensors', 'atomic_torch_save', 'load_training_checkpoint', 'sqrt_scaled_lr',
    'trained_keys', 'trained_state_dict',
]
