"""Presets: SD-Turbo-scale parameter counts (on the meta device) and loading a
local diffusers prior."""

import pytest
import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

from unirestore_mm.models import DiffusionPrior, UniRestore, get_preset
from unirestore_mm.models.prior import (
    NULL_EMBEDDING_FILE,
    _atomic_save_safetensors,
)

# DESIGN.md §2: counted from the authors' modules
SD_TURBO_COUNTS = dict(
    cfrm=25_960_624,
    controller=52_494_080,
    skip_adapters=22_147_200,
    tfa=21_030_656,
)


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def test_sd_turbo_counts_match_the_authors():
    with torch.device('meta'):  # no weights are allocated
        model = UniRestore(preset='sd-turbo')
    for part, count in SD_TURBO_COUNTS.items():
        assert n_params(getattr(model, part)) == count, part
    assert [n_params(s) for s in model.cfrm.stages] == [
        543_632,
        2_135_824,
        23_281_168,
    ]
    assert [n_params(a) for a in model.tfa.adapters] == [
        15_602_944,
        4_164_480,
        1_263_232,
    ]
    assert len(model.skip_adapters) == 12
    assert model.prompts['ir'].shape == (1, 512)
    assert model.size_divisor == 64 and model.min_size == 512
    # the SD 2.1 / SD-Turbo prior: 83.65 M VAE + 865.91 M UNet
    assert n_params(model.prior.vae) == 83_653_863
    assert n_params(model.prior.unet) == 865_910_724


def test_sd_turbo_controller_maps_by_size():
    with torch.device('meta'):
        model = UniRestore(preset='sd-turbo')
        maps = model.controller(torch.empty(1, 4, 64, 64), torch.tensor([999]))
    assert {k: tuple(v.shape) for k, v in maps.items()} == {
        (64, 64): (1, 256, 64, 64),
        (32, 32): (1, 256, 32, 32),
        (16, 16): (1, 256, 16, 16),
        (8, 8): (1, 256, 8, 8),
    }


def save_tiny_diffusers_folder(root, null=True):
    """A diffusers folder (vae/, unet/, scheduler/) of the tiny preset's
    architecture, as a user would have."""
    prior_cfg = get_preset('tiny')['prior']
    torch.manual_seed(1)
    AutoencoderKL(**prior_cfg['vae']).save_pretrained(str(root / 'vae'))
    UNet2DConditionModel(**prior_cfg['unet']).save_pretrained(
        str(root / 'unet')
    )
    DDPMScheduler.from_config(prior_cfg['scheduler']).save_pretrained(
        str(root / 'scheduler')
    )
    if null:
        _atomic_save_safetensors(
            {'null_embedding': torch.randn(1, 77, 32)},
            str(root / NULL_EMBEDDING_FILE),
        )
    return root


def test_from_pretrained_local_folder_offline(tmp_path, monkeypatch):
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    folder = save_tiny_diffusers_folder(tmp_path / 'tiny-sd')
    model = UniRestore(
        preset='tiny', prior=dict(pretrained=str(folder))
    ).eval()
    assert model.prior.source == str(folder)
    # the weights really are the folder's
    vae = AutoencoderKL.from_pretrained(str(folder / 'vae'))
    assert torch.equal(
        model.prior.vae.encoder.conv_in.weight, vae.encoder.conv_in.weight
    )
    x = torch.rand(1, 3, 32, 32)
    y = model.restore(x, task='seg', seed=0)
    assert y.shape == x.shape and torch.isfinite(y).all()
    # save_pretrained keeps only the restorer; from_pretrained finds the prior
    # through the saved path
    model.save_pretrained(str(tmp_path / 'restorer'))
    again = UniRestore.from_pretrained(str(tmp_path / 'restorer'))
    assert torch.equal(again.restore(x, task='seg', seed=0), y)


def test_prior_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='not a folder'):
        DiffusionPrior.from_pretrained(str(tmp_path / 'nope'))
    (tmp_path / 'half').mkdir()
    (tmp_path / 'half' / 'vae').mkdir()
    with pytest.raises(
        FileNotFoundError, match=r"lacks the sub-folder\(s\) \['unet'\]"
    ):
        DiffusionPrior.from_pretrained(str(tmp_path / 'half'))


def test_null_embedding_from_explicit_file(tmp_path):
    folder = save_tiny_diffusers_folder(tmp_path / 'sd', null=False)
    emb = torch.randn(77, 32)
    torch.save(emb, tmp_path / 'null.pt')
    prior = DiffusionPrior.from_pretrained(
        str(folder), null_embedding=str(tmp_path / 'null.pt')
    )
    assert torch.equal(prior.null_embedding[0], emb)
    torch.save(torch.randn(77, 16), tmp_path / 'wrong.pt')
    with pytest.raises(ValueError, match='cross_attention_dim 32'):
        DiffusionPrior.from_pretrained(
            str(folder), null_embedding=str(tmp_path / 'wrong.pt')
        )


def test_random_prior_is_deterministic():
    a, b = UniRestore('tiny'), UniRestore('tiny')
    assert torch.equal(
        a.prior.unet.conv_in.weight, b.prior.unet.conv_in.weight
    )
    assert torch.equal(a.prior.null_embedding, b.prior.null_embedding)
    c = UniRestore('tiny', prior=dict(seed=1))
    assert not torch.equal(
        a.prior.unet.conv_in.weight, c.prior.unet.conv_in.weight
    )


def test_built_prior_is_recorded_in_config(tmp_path):
    prior = DiffusionPrior.from_config(
        **{
            k: v
            for k, v in get_preset('tiny')['prior'].items()
            if k not in ('pretrained', 'seed')
        },
        seed=5,
    )
    model = UniRestore('tiny', prior=prior)
    model.save_pretrained(str(tmp_path))
    again = UniRestore.from_pretrained(str(tmp_path))
    assert torch.equal(
        again.prior.unet.conv_in.weight, prior.unet.conv_in.weight
    )


def test_null_embedding_computed_once_with_the_folders_text_encoder(tmp_path):
    transformers = pytest.importorskip('transformers')
    import json

    folder = save_tiny_diffusers_folder(tmp_path / 'sd', null=False)
    (tmp_path / 'vocab').mkdir()
    vocab = {'<|startoftext|>': 0, '<|endoftext|>': 1, '!': 2, 'a</w>': 3}
    (tmp_path / 'vocab' / 'vocab.json').write_text(json.dumps(vocab))
    (tmp_path / 'vocab' / 'merges.txt').write_text('#version: 0.2\n')
    tokenizer = transformers.CLIPTokenizer(
        vocab_file=str(tmp_path / 'vocab' / 'vocab.json'),
        merges_file=str(tmp_path / 'vocab' / 'merges.txt'),
        pad_token='!',
        model_max_length=77,
    )
    tokenizer.save_pretrained(str(folder / 'tokenizer'))
    torch.manual_seed(0)
    encoder = transformers.CLIPTextModel(
        transformers.CLIPTextConfig(
            vocab_size=4,
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=1,
            num_attention_heads=4,
            max_position_embeddings=77,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=2,
        )
    )
    encoder.save_pretrained(str(folder / 'text_encoder'))

    prior = DiffusionPrior.from_pretrained(str(folder))
    ids = tokenizer(
        [''], padding='max_length', max_length=77, return_tensors='pt'
    ).input_ids
    with torch.no_grad():
        expected = encoder(ids)[0]
    assert torch.allclose(prior.null_embedding, expected, atol=1e-6)
    # cached: the next load needs no text encoder
    assert (folder / NULL_EMBEDDING_FILE).is_file()
    (folder / 'text_encoder' / 'model.safetensors').unlink()
    again = DiffusionPrior.from_pretrained(str(folder))
    assert torch.equal(again.null_embedding, prior.null_embedding)
