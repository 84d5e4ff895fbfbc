"""Load the authors' released UniRestore checkpoints (PyTorch Lightning files)
into :class:`UniRestore`.

The authors' release (github.com/unirestore/UniRestore) trains a
``LightningModule`` whose ``model`` attribute holds the network, and saves only
the trained parts in each stage's ``.ckpt`` file (``state_dict`` keys start
with ``model.``).  Their module names differ from this package's; this file
maps them.

==========================================================  ==================================================
authors' key                                                this package's key
==========================================================  ==================================================
``model.ae.vae.encoder.fr_blocks.{i}.{j}.*`` (NAFBlock)      ``cfrm.stages.{i}.{j}.*`` (same inner names)
``model.ae.vae.encoder.fr_blocks.{i}.{last}.*`` (CFRM block) ``cfrm.stages.{i}.{last}.*`` with ``group_norm`` ->
                                                            ``norm``, ``intra_group_attn.1`` ->
                                                            ``intra_group_attn``, ``inter_group_attn.1`` ->
                                                            ``inter_group_attn``, ``pwconv`` -> ``conv_out``,
                                                            ``nafblock`` -> ``naf``
``model.ae.vae.decoder.task_editors.{i}.*`` (TFA)            ``tfa.adapters.{i}.*`` with ``t_gate1`` ->
                                                            ``skip_in``, ``t_gate2`` -> ``skip_out``,
                                                            ``conv_out`` -> ``fuse``, ``content_trans`` ->
                                                            ``content_gate``, ``out_gate.0`` -> ``out_gate``,
                                                            ``prompt_trans.0`` -> ``next_token``
``model.ae.vae.decoder.task_prompts.<task>``                 ``prompts.prompts.<task>``
``model.controller.*``                                       ``controller.*`` with ``middle_block`` ->
                                                            ``mid_block``, ``fea_tran`` -> ``level_outs``
``model.base_model.csc_editors.{k}.*`` (SCEdit adapters)     ``skip_adapters.adapters.{k}.*`` (same inner names)
==========================================================  ==================================================

Frozen SD weights that a file may also carry (``model.ae.vae.*`` outside the
blocks above, ``model.base_model.unet.*``, ``model.base_model.null_embeds``,
``model.train_timesteps``) belong to the prior, which this package loads from
its own diffusers folder; they are skipped and reported.

Usage::

    model = UniRestore(preset='sd-turbo', prior=dict(pretrained='/models/sd-turbo'))
    load_author_checkpoint(model, ['stage1.ckpt', 'stage2.ckpt'])      # in the order the stages were trained
    model.save_pretrained('work_dirs/unirestore-authors')               # safetensors from then on

or from the command line::

    python -m unirestore_mm.models.author_checkpoint stage1.ckpt stage2.ckpt -o unirestore-authors.safetensors
"""  # noqa: E501

import argparse
import os
import re
from typing import (
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import torch

from ..utils.fileio import atomic_save_safetensors
from .checkpoint_io import load_checkpoint_file

__all__ = [
    'AUTHOR_PREFIXES',
    'check_against_model',
    'convert_author_state_dict',
    'load_author_checkpoint',
    'load_author_state_dict',
]

# The authors' module prefixes (after Lightning's ``model.``) and ours.
AUTHOR_PREFIXES = {
    'ae.vae.encoder.fr_blocks.': 'cfrm.stages.',
    'ae.vae.decoder.task_editors.': 'tfa.adapters.',
    'ae.vae.decoder.task_prompts.': 'prompts.prompts.',
    'controller.': 'controller.',
    'base_model.csc_editors.': 'skip_adapters.adapters.',
}
# Parts of the frozen prior that the authors' files may also hold.
_PRIOR_PREFIXES = (
    'ae.vae.',
    'base_model.unet.',
    'base_model.null_embeds',
    'train_timesteps',
)

# inner names of the authors' CFRM block (``AdaNAFV2``) -> ours (``CFRMBlock``)
_CFRM_BLOCK = (
    ('group_norm.', 'norm.'),
    ('intra_group_attn.1.', 'intra_group_attn.'),
    ('inter_group_attn.1.', 'inter_group_attn.'),
    ('pwconv.', 'conv_out.'),
    ('nafblock.', 'naf.'),
    # ``conv_in.`` and ``group_conv.`` keep their names
)
# inner names of the authors' TFA (``TaskFeatureAdapter`` in taskeditor.py) ->
# ours
_TFA = (
    ('t_gate1.', 'skip_in.'),
    ('t_gate2.', 'skip_out.'),
    ('conv_out.', 'fuse.'),
    ('content_trans.', 'content_gate.'),
    ('out_gate.0.', 'out_gate.'),
    ('prompt_trans.0.', 'next_token.'),
    # ``filter_gate.{1,3}.`` and ``info_gate.{1,3}.`` keep their names
)
# top-level names of the authors' Controller -> ours (diffusers' blocks inside
# keep their names)
_CONTROLLER = (
    ('middle_block.', 'mid_block.'),
    ('fea_tran.', 'level_outs.'),
)
_CFRM_BLOCK_MARKERS = (
    'conv_in.',
    'group_norm.',
    'group_conv.',
    'intra_group_attn.',
    'inter_group_attn.',
    'pwconv.',
    'nafblock.',
)


def _rename(rest: str, table: Sequence[Tuple[str, str]]) -> str:
    for old, new in table:
        if rest.startswith(old):
            return new + rest[len(old) :]
    return rest


def _strip_lightning(key: str) -> str:
    # Lightning prefixes the LightningModule's attribute (``model.``);
    # DDP/compile may add more.
    for prefix in ('_forward_module.', 'module.', '_orig_mod.'):
        if key.startswith(prefix):
            key = key[len(prefix) :]
    return key[len('model.') :] if key.startswith('model.') else key


def convert_author_state_dict(
    state: Mapping[str, torch.Tensor],
) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """Map an authors' ``state_dict`` to this package's keys.

    Returns ``(converted, skipped)``: ``skipped`` lists the keys that belong to
    the frozen prior or to nothing of UniRestore's (e.g. a recognizer's
    ``criterion.*``); the caller decides whether that is an error.
    """
    converted: Dict[str, torch.Tensor] = {}
    skipped: List[str] = []
    for key, value in state.items():
        inner = _strip_lightning(key)
        for prefix, ours in AUTHOR_PREFIXES.items():
            if not inner.startswith(prefix):
                continue
            rest = inner[len(prefix) :]
            if prefix == 'ae.vae.encoder.fr_blocks.':
                # "<stage>.<index in the Sequential>.<name>"; the CFRM block is
                # the one with CFRM-block names
                m = re.match(r'(\d+)\.(\d+)\.(.*)$', rest)
                if m is None:
                    raise ValueError(
                        f'authors checkpoint: unexpected CFRM key {key!r}'
                    )
                stage, idx, name = m.groups()
                if name.startswith(_CFRM_BLOCK_MARKERS):
                    name = _rename(name, _CFRM_BLOCK)
                rest = f'{stage}.{idx}.{name}'
            elif prefix == 'ae.vae.decoder.task_editors.':
                m = re.match(r'(\d+)\.(.*)$', rest)
                if m is None:
                    raise ValueError(
                        f'authors checkpoint: unexpected TFA key {key!r}'
                    )
                rest = f'{m.group(1)}.{_rename(m.group(2), _TFA)}'
            elif prefix == 'controller.':
                rest = _rename(rest, _CONTROLLER)
            converted[ours + rest] = value
            break
        else:
            skipped.append(key)
    return converted, skipped


def _read_state_dict(
    path: str, allow_pickle: bool = False
) -> Dict[str, torch.Tensor]:
    ckpt = load_checkpoint_file(
        path,
        'authors checkpoint',
        allow_pickle,
        'If you trust the file, pass allow_pickle=True (command line: '
        '--allow-pickle) to unpickle it once, then keep the converted '
        '.safetensors.',
    )
    if isinstance(ckpt, dict) and 'state_dict' in ckpt:
        ckpt = ckpt['state_dict']
    if not isinstance(ckpt, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in ckpt.values()
    ):
        raise ValueError(
            f'authors checkpoint {path!r}: expected a Lightning file with a '
            '"state_dict" of tensors'
        )
    return dict(ckpt)


def load_author_state_dict(
    paths: Union[str, Sequence[str]],
    allow_pickle: bool = False,
) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """Read one or several authors' files (stage 1, stage 2, stage 3 ...) and
    merge them, later files winning."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    merged: Dict[str, torch.Tensor] = {}
    skipped: List[str] = []
    for path in paths:
        converted, skip = convert_author_state_dict(
            _read_state_dict(str(path), allow_pickle=allow_pickle)
        )
        if not converted:
            raise ValueError(
                f'authors checkpoint {path!r} holds none of UniRestore\'s '
                'modules (keys such as '
                '"model.ae.vae.encoder.fr_blocks.0..." or '
                f'"model.controller..."); first keys: {skip[:5]}'
            )
        merged.update(converted)
        skipped += skip
    return merged, skipped


def check_against_model(
    model, state: Mapping[str, torch.Tensor], strict: bool = True
) -> List[str]:
    """Check converted keys and shapes against ``model``; returns the restorer
    keys that ``state`` lacks."""
    own = model.state_dict()
    unexpected = sorted(set(state) - set(own))
    if unexpected:
        raise ValueError(
            f'authors checkpoint: {len(unexpected)} mapped keys have no '
            f'place in this model (preset {model.config["preset"]!r}): '
            f'{unexpected[:5]}'
        )
    bad = [
        (k, tuple(v.shape), tuple(own[k].shape))
        for k, v in state.items()
        if v.shape != own[k].shape
    ]
    if bad:
        raise ValueError(
            'authors checkpoint: shape mismatch (key, file, model), e.g. '
            f'{bad[:3]}; the released '
            "files need preset='sd-turbo'"
        )
    missing = sorted(set(own) - set(state))
    if strict and missing:
        parts = sorted({k.split('.')[0] for k in missing})
        raise ValueError(
            f'authors checkpoint: {len(missing)} restorer weights missing '
            f'(parts {parts}), e.g. {missing[:3]}; pass every stage\'s file '
            '(stage 1 for cfrm/controller/skip_adapters, '
            'stage 2 for tfa/prompts) or strict=False'
        )
    return missing


def load_author_checkpoint(
    model,
    paths: Union[str, Sequence[str], Mapping[str, torch.Tensor]],
    strict: bool = True,
    add_tasks: bool = True,
    allow_pickle: bool = False,
) -> Dict:
    """Load the authors' checkpoint(s) into a
    :class:`~unirestore_mm.models.UniRestore`.

    Args:
        model: the restorer (its preset must match the checkpoint: ``sd-turbo``
            for the released files).
        paths: one path, several (merged in order), or an authors'-layout state
            dict.
        strict: require that together they cover every restorer weight and
            match every shape.
        add_tasks: add a prompt for each task the checkpoint has and the model
            lacks (e.g. a stage-3 ``det``).
        allow_pickle: unpickle files that ``weights_only`` loading refuses
            (only for files you trust).

    Returns ``dict(loaded=[...], missing=[...], skipped=[...])``.
    """
    if isinstance(paths, Mapping):
        state, skipped = convert_author_state_dict(paths)
    else:
        state, skipped = load_author_state_dict(
            paths, allow_pickle=allow_pickle
        )
    if add_tasks:
        for key in state:
            if key.startswith('prompts.prompts.'):
                task = key[len('prompts.prompts.') :]
                if task not in model.prompts:
                    model.add_task(task)
    missing = check_against_model(model, state, strict=strict)
    model.load_state_dict(state, strict=False)
    prior_like = [
        k for k in skipped if _strip_lightning(k).startswith(_PRIOR_PREFIXES)
    ]
    return dict(
        loaded=sorted(state),
        missing=missing,
        skipped=skipped,
        prior_keys=len(prior_like),
    )


def _iter_paths(values: Iterable[str]) -> List[str]:
    return [str(v) for v in values]


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(
        description="Convert the authors' UniRestore Lightning checkpoints "
        "to this package's safetensors."
    )
    parser.add_argument(
        'checkpoints',
        nargs='+',
        help='stage-1, stage-2 (and stage-3) .ckpt files, in order',
    )
    parser.add_argument(
        '-o',
        '--out',
        required=True,
        help='output .safetensors (restorer weights only)',
    )
    parser.add_argument(
        '--check-preset',
        default=None,
        help="also build UniRestore(preset=...) with a random prior and "
        "check every key and shape",
    )
    parser.add_argument(
        '--allow-pickle',
        action='store_true',
        help='unpickle files weights_only refuses',
    )
    args = parser.parse_args(argv)
    state, skipped = load_author_state_dict(
        _iter_paths(args.checkpoints), allow_pickle=args.allow_pickle
    )
    if args.check_preset:
        from .unirestore import UniRestore

        with torch.device('meta'):
            model = UniRestore(preset=args.check_preset)
        check_against_model(model, state, strict=True)
    atomic_save_safetensors(state, args.out, metadata={'format': 'pt'})
    print(
        f'wrote {len(state)} tensors to {args.out}; skipped {len(skipped)} '
        'keys (frozen prior or other)'
    )


if __name__ == '__main__':
    main()
