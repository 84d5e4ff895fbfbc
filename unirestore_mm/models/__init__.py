from .autoencoder import EncoderOutput, decode_with_tfa, encode_with_cfrm
from .cfrm import CFRM, CFRMBlock, CFRMStage, LayerNorm2d, NAFBlock
from .controller import Controller
from .presets import PRESETS, get_preset
from .prior import DiffusionPrior
from .skip_adapters import SkipAdapter, SkipAdapters, controlled_unet_forward
from .tfa import TaskFeatureAdapter, TaskFeatureAdapters, TaskPromptBank
from .unirestore import UniRestore, UniRestoreOutput

__all__ = [
    'CFRM',
    'CFRMBlock',
    'CFRMStage',
    'Controller',
    'DiffusionPrior',
    'EncoderOutput',
    'LayerNorm2d',
    'NAFBlock',
    'PRESETS',
    'SkipAdapter',
    'SkipAdapters',
    'TaskFeatureAdapter',
    'TaskFeatureAdapters',
    'TaskPromptBank',
    'UniRestore',
    'UniRestoreOutput',
    'controlled_unet_forward',
    'decode_with_tfa',
    'encode_with_cfrm',
    'get_preset',
]
# isort: off
from .restorer_model import (  # noqa: E402
    PairedDataPreprocessor,  # noqa: F401
    UniRestoreModel,  # noqa: F401
    build_restorer,  # noqa: F401
    load_restorer_weights,  # noqa: F401
)
from .restored_backbone import RestoredBackbone  # noqa: E402,F401
from .author_checkpoint import load_author_checkpoint  # noqa: E402,F401
from .recognizers import Recognizer, build_recognizer  # noqa: E402,F401
from .task_restorer import TaskRestorer  # noqa: E402,F401
from .prior_training import (  # noqa: E402
    ExportPriorHook,  # noqa: F401
    PriorUNetModel,  # noqa: F401
    PriorVAEModel,  # noqa: F401
    save_prior,  # noqa: F401
)
# isort: on
