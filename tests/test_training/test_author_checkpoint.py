"""The authors' released Lightning checkpoints load through the key map (item 7
of issue 5).

The test builds state dicts in the authors' layout (module names and shapes as
defined in their
``src/modules/diffuie/{cfrm,nafnet_arch,taskeditor,scedit,controller,autoencoder,base_model}.py``):
at SD scale on the meta device (every key and shape must map onto
``UniRestore(preset='sd-turbo')``) and at tiny scale with real values (every
value must land where it belongs).
"""

import pytest
import torch
from diffusers.models.embeddings import TimestepEmbedding
from diffusers.models.resnet import ResnetBlock2D
from diffusers.models.unets.unet_2d_blocks import (
    UNetMidBlock2D,
    get_down_block,
)
from torch import nn

from unirestore_mm.models import UniRestore
from unirestore_mm.models.author_checkpoint import (
    check_against_model,
    convert_author_state_dict,
    load_author_checkpoint,
)


# -- the authors' layout ------------------------------------------------------
def nafblock(c):
    """nafnet_arch.NAFBlock(c): DW_Expand = FFN_Expand = 2, timm
    LayerNorm2d."""
    return {
        'conv1.weight': (2 * c, c, 1, 1),
        'conv1.bias': (2 * c,),
        'conv2.weight': (2 * c, 1, 3, 3),
        'conv2.bias': (2 * c,),
        'conv3.weight': (c, c, 1, 1),
        'conv3.bias': (c,),
        'sca.1.weight': (c, c, 1, 1),
        'sca.1.bias': (c,),
        'conv4.weight': (2 * c, c, 1, 1),
        'conv4.bias': (2 * c,),
        'conv5.weight': (c, c, 1, 1),
        'conv5.bias': (c,),
        'norm1.weight': (c,),
        'norm1.bias': (c,),
        'norm2.weight': (c,),
        'norm2.bias': (c,),
        'beta': (1, c, 1, 1),
        'gamma': (1, c, 1, 1),
    }


def adanafv2(c, g=16):
    """cfrm.AdaNAFV2(c): the CFRM block (4c channels in 16 groups) and a
    trailing NAFBlock."""
    d = 4 * c
    out = {
        'conv_in.weight': (d, c, 1, 1),
        'conv_in.bias': (d,),
        'group_norm.weight': (d,),
        'group_norm.bias': (d,),
        'group_conv.weight': (d, d // g, 3, 3),
        'group_conv.bias': (d,),
        'intra_group_attn.1.weight': (d, d // g, 1, 1),
        'intra_group_attn.1.bias': (d,),
        'inter_group_attn.1.weight': (g, d, 1, 1),
        'inter_group_attn.1.bias': (g,),
        'pwconv.weight': (c, d, 1, 1),
        'pwconv.bias': (c,),
    }
    out.update({'nafblock.' + k: v for k, v in nafblock(c).items()})
    return out


def task_editor(c_out, c_skip, last=False, T=1):
    """taskeditor.TaskFeatureAdapter(c_out, c_skip, prompt_len=T,
    last_layer=last)."""
    out = {
        't_gate1.weight': (c_skip, c_skip, 1, 1),
        't_gate1.bias': (c_skip,),
        't_gate2.weight': (c_skip, c_skip, 1, 1),
        't_gate2.bias': (c_skip,),
        'conv_out.weight': (c_out, c_skip + c_out, 1, 1),
        'conv_out.bias': (c_out,),
        'out_gate.0.weight': (c_skip, T * c_skip),
        'out_gate.0.bias': (c_skip,),
    }
    for gate in ('filter_gate', 'info_gate', 'content_trans'):
        out.update(
            {
                f'{gate}.1.weight': (c_skip, c_skip, 3, 3),
                f'{gate}.1.bias': (c_skip,),
                f'{gate}.3.weight': (T * c_skip, c_skip, 3, 3),
                f'{gate}.3.bias': (T * c_skip,),
            }
        )
    if not last:
        out.update(
            {
                'prompt_trans.0.weight': (c_skip // 2, c_skip),
                'prompt_trans.0.bias': (c_skip // 2,),
            }
        )
    return out


def csce_adapter(c, c_cond):
    """scedit.CSCEAdapter(c, c, c_cond)."""
    return {
        'proj.weight': (c, c_cond, 1, 1),
        'proj.bias': (c,),
        'tuner.0.weight': (c, c, 1, 1),
        'tuner.0.bias': (c,),
        'tuner.2.weight': (c, c, 1, 1),
        'tuner.2.bias': (c,),
    }


def author_controller(
    model_channels,
    out_channels,
    channel_mult,
    down_block_types,
    num_heads,
    groups,
    nres,
):
    """controller.Controller with stablesr_config's structure (names:
    middle_block, fea_tran)."""
    m = nn.Module()
    temb = model_channels * 4
    m.time_embedding = TimestepEmbedding(model_channels, temb, act_fn='silu')
    m.conv_in = nn.Conv2d(4, model_channels, 3, padding=1)
    m.down_blocks = nn.ModuleList()
    chans, width = [], model_channels
    for i, (mult, kind) in enumerate(zip(channel_mult, down_block_types)):
        out = model_channels * mult
        m.down_blocks.append(
            get_down_block(
                kind,
                num_layers=nres,
                in_channels=width,
                out_channels=out,
                temb_channels=temb,
                dropout=0.0,
                add_downsample=i < len(channel_mult) - 1,
                resnet_eps=1e-5,
                resnet_act_fn='silu',
                resnet_groups=groups,
                downsample_padding=1,
                attention_head_dim=out // num_heads,
                downsample_type='conv',
            )
        )
        chans.append(out)
        width = out
    m.middle_block = UNetMidBlock2D(
        in_channels=width,
        temb_channels=temb,
        dropout=0.0,
        resnet_eps=1e-5,
        resnet_act_fn='silu',
        resnet_groups=groups,
        attention_head_dim=width // num_heads,
    )
    m.fea_tran = nn.ModuleList(
        ResnetBlock2D(
            in_channels=c,
            out_channels=out_channels,
            temb_channels=temb,
            groups=groups,
            eps=1e-5,
            non_linearity='silu',
        )
        for c in chans
    )
    return {k: tuple(v.shape) for k, v in m.state_dict().items()}


def author_layout(
    enc=(128, 256, 512),
    naf=(1, 1, 9),
    dec_x=512,
    skip_chans=(320,) * 4 + (640,) * 3 + (1280,) * 5,
    controller=None,
    tasks=('ir', 'cls', 'seg'),
    prompt_dim=512,
):
    """name -> shape of everything the authors' stage-1 and stage-2 files hold
    (without ``model.``)."""
    controller = controller or dict(
        model_channels=256,
        out_channels=256,
        channel_mult=(1, 1, 2, 2),
        down_block_types=('AttnDownBlock2D',) * 3 + ('DownBlock2D',),
        num_heads=4,
        groups=32,
        nres=2,
    )
    stage1, stage2 = {}, {}
    for i, (c, n) in enumerate(zip(enc, naf)):
        for j in range(n):
            stage1.update(
                {
                    f'ae.vae.encoder.fr_blocks.{i}.{j}.{k}': v
                    for k, v in nafblock(c).items()
                }
            )
        stage1.update(
            {
                f'ae.vae.encoder.fr_blocks.{i}.{n}.{k}': v
                for k, v in adanafv2(c).items()
            }
        )
    stage1.update(
        {
            'controller.' + k: v
            for k, v in author_controller(**controller).items()
        }
    )
    for i, c in enumerate(skip_chans):
        stage1.update(
            {
                f'base_model.csc_editors.{i}.{k}': v
                for k, v in csce_adapter(c, controller['out_channels']).items()
            }
        )
    for i, c_skip in enumerate(reversed(enc)):
        stage2.update(
            {
                f'ae.vae.decoder.task_editors.{i}.{k}': v
                for k, v in task_editor(
                    dec_x, c_skip, last=i == len(enc) - 1
                ).items()
            }
        )
    for t in tasks:
        stage2[f'ae.vae.decoder.task_prompts.{t}'] = (1, prompt_dim)
    return stage1, stage2


TINY = dict(
    enc=(16, 32, 64),
    naf=(1, 1, 1),
    dec_x=64,
    skip_chans=(32, 32, 32, 64),
    prompt_dim=64,
    controller=dict(
        model_channels=32,
        out_channels=32,
        channel_mult=(1, 2),
        down_block_types=('AttnDownBlock2D', 'DownBlock2D'),
        num_heads=2,
        groups=8,
        nres=1,
    ),
)


def lightning_file(path, layout, seed, extra=None):
    """A file as Lightning writes it: ``state_dict`` with ``model.`` keys and
    the trainer's bookkeeping."""
    g = torch.Generator().manual_seed(seed)
    state = {
        'model.' + k: torch.randn(shape, generator=g)
        for k, shape in layout.items()
    }
    state.update(extra or {})
    torch.save(
        {
            'epoch': 7,
            'global_step': 200000,
            'pytorch-lightning_version': '2.2.1',
            'state_dict': state,
            'loops': {},
            'callbacks': {},
            'optimizer_states': [],
            'lr_schedulers': [],
            'hyper_parameters': {'model_kwargs': {'frenc': {'type': 'CFRM'}}},
        },
        path,
    )
    return state


# -- tests --------------------------------------------------------------------
def test_sd_scale_layout_maps_every_key_and_shape():
    stage1, stage2 = author_layout()
    counts = {}
    for k, shape in {**stage1, **stage2}.items():
        part = (
            'prompts'
            if 'task_prompts' in k
            else k.split('.')[0]
            if not k.startswith('ae.')
            else k.split('.')[3]
        )
        counts[part] = counts.get(part, 0) + torch.Size(shape).numel()
    # DESIGN §2: the authors' parameter counts
    assert (
        counts['fr_blocks'] == 25_960_624
        and counts['controller'] == 52_494_080
    )
    assert (
        counts['base_model'] == 22_147_200
        and counts['task_editors'] == 21_030_656
    )

    state = {
        'model.' + k: torch.empty(shape, device='meta')
        for k, shape in {**stage1, **stage2}.items()
    }
    converted, skipped = convert_author_state_dict(state)
    assert not skipped and len(converted) == len(state)
    with torch.device('meta'):
        model = UniRestore(preset='sd-turbo')
    # every restorer key, every shape
    assert check_against_model(model, converted, strict=True) == []


def test_tiny_lightning_files_load_value_by_value(tmp_path):
    stage1, stage2 = author_layout(**TINY)
    prior_keys = {
        'model.ae.vae.encoder.conv_in.weight': torch.zeros(16, 3, 3, 3),
        'model.base_model.null_embeds': torch.zeros(1, 77, 32),
    }
    s1 = lightning_file(
        tmp_path / 'stage1.ckpt', stage1, seed=1, extra=prior_keys
    )
    s2 = lightning_file(tmp_path / 'stage2.ckpt', stage2, seed=2)
    s3 = lightning_file(
        tmp_path / 'stage3.ckpt',
        {'ae.vae.decoder.task_prompts.det': (1, 64)},
        seed=3,
    )
    model = UniRestore(preset='tiny')
    report = load_author_checkpoint(
        model,
        [
            tmp_path / 'stage1.ckpt',
            tmp_path / 'stage2.ckpt',
            tmp_path / 'stage3.ckpt',
        ],
    )
    assert report['missing'] == [] and report['prior_keys'] == 2
    assert model.tasks == ['ir', 'cls', 'seg', 'det']

    src = {**s1, **s2, **s3}
    ours = model.state_dict()
    # every renamed spot lands where the authors' module had it
    pairs = {
        'cfrm.stages.0.0.norm1.weight': 'ae.vae.encoder.fr_blocks.0.0.norm1.'
        'weight',
        'cfrm.stages.2.0.sca.1.weight': 'ae.vae.encoder.fr_blocks.2.0.sca.1.'
        'weight',
        'cfrm.stages.1.1.norm.weight': 'ae.vae.encoder.fr_blocks.1.1.group_'
        'norm.weight',
        'cfrm.stages.1.1.conv_in.weight': 'ae.vae.encoder.fr_blocks.1.1.conv_'
        'in.weight',
        'cfrm.stages.1.1.intra_group_attn.bias': 'ae.vae.encoder.fr_blocks.1.'
        '1.intra_group_attn.1.bias',
        'cfrm.stages.1.1.inter_group_attn.weight': 'ae.vae.encoder.fr_blocks.'
        '1.1.inter_group_attn.1.weight',
        'cfrm.stages.1.1.conv_out.weight': 'ae.vae.encoder.fr_blocks.1.1.'
        'pwconv.weight',
        'cfrm.stages.2.1.naf.gamma': 'ae.vae.encoder.fr_blocks.2.1.nafblock.'
        'gamma',
        'tfa.adapters.0.skip_in.weight': 'ae.vae.decoder.task_editors.0.t_'
        'gate1.weight',
        'tfa.adapters.1.skip_out.bias': 'ae.vae.decoder.task_editors.1.t_'
        'gate2.bias',
        'tfa.adapters.2.fuse.weight': 'ae.vae.decoder.task_editors.2.conv_'
        'out.weight',
        'tfa.adapters.0.content_gate.3.weight': 'ae.vae.decoder.task_editors.'
        '0.content_trans.3.weight',
        'tfa.adapters.1.filter_gate.1.weight': 'ae.vae.decoder.task_editors.'
        '1.filter_gate.1.weight',
        'tfa.adapters.0.out_gate.weight': 'ae.vae.decoder.task_editors.0.out_'
        'gate.0.weight',
        'tfa.adapters.1.next_token.weight': 'ae.vae.decoder.task_editors.1.'
        'prompt_trans.0.weight',
        'prompts.prompts.cls': 'ae.vae.decoder.task_prompts.cls',
        'prompts.prompts.det': 'ae.vae.decoder.task_prompts.det',
        'controller.mid_block.resnets.0.conv1.weight': 'controller.middle_'
        'block.resnets.0.conv1.weight',
        'controller.level_outs.1.conv2.weight': 'controller.fea_tran.1.conv2.'
        'weight',
        'controller.down_blocks.0.attentions.0.to_q.weight': 'controller.'
        'down_blocks.0.attentions.0.to_q.weight',
        'controller.time_embedding.linear_1.weight': 'controller.time_'
        'embedding.linear_1.weight',
        'skip_adapters.adapters.3.tuner.2.weight': 'base_model.csc_editors.3.'
        'tuner.2.weight',
        'skip_adapters.adapters.0.proj.bias': 'base_model.csc_editors.0.proj.'
        'bias',
    }
    for mine, theirs in pairs.items():
        assert torch.equal(ours[mine], src['model.' + theirs]), mine
    # and every restorer tensor is one of the file's (random values: a
    # bijection)
    by_bytes = {
        (tuple(v.shape), v.sum().item(), v.flatten()[0].item())
        for v in src.values()
    }
    for k, v in ours.items():
        assert (
            tuple(v.shape),
            v.sum().item(),
            v.flatten()[0].item(),
        ) in by_bytes, k
    # the loaded model runs
    out = model.restore(torch.rand(1, 3, 32, 32), task='det', seed=0)
    assert out.shape == (1, 3, 32, 32) and torch.isfinite(out).all()


def test_missing_stage_and_wrong_preset_are_clear_errors(tmp_path):
    stage1, stage2 = author_layout(**TINY)
    lightning_file(tmp_path / 'stage1.ckpt', stage1, seed=1)
    with pytest.raises(ValueError, match='stage 2 for tfa/prompts'):
        load_author_checkpoint(
            UniRestore(preset='tiny'), tmp_path / 'stage1.ckpt'
        )
    report = load_author_checkpoint(
        UniRestore(preset='tiny'), tmp_path / 'stage1.ckpt', strict=False
    )
    assert report['missing'] and all(
        k.startswith(('tfa.', 'prompts.')) for k in report['missing']
    )

    sd1, _ = author_layout()
    big = {
        'model.' + k: torch.empty(s, device='meta')
        for k, s in sd1.items()
        if 'fr_blocks.0.' in k
    }
    with pytest.raises(ValueError, match="preset='sd-turbo'"):
        load_author_checkpoint(UniRestore(preset='tiny'), big, strict=False)
    torch.save(
        {'state_dict': {'model.classifier.weight': torch.zeros(2)}},
        tmp_path / 'other.ckpt',
    )
    with pytest.raises(ValueError, match='none of UniRestore'):
        load_author_checkpoint(
            UniRestore(preset='tiny'), tmp_path / 'other.ckpt'
        )


def test_command_line_writes_safetensors(tmp_path):
    from safetensors.torch import load_file

    from unirestore_mm.models.author_checkpoint import main

    stage1, stage2 = author_layout(**TINY)
    lightning_file(tmp_path / 's1.ckpt', stage1, seed=1)
    lightning_file(tmp_path / 's2.ckpt', stage2, seed=2)
    out = tmp_path / 'conv' / 'unirestore.safetensors'
    main(
        [
            str(tmp_path / 's1.ckpt'),
            str(tmp_path / 's2.ckpt'),
            '-o',
            str(out),
            '--check-preset',
            'tiny',
        ]
    )
    model = UniRestore(preset='tiny')
    model.load_weights(str(out))
    assert set(load_file(str(out))) == set(model.state_dict())
