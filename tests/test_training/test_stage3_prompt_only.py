"""Stage 3: a prompt for a new task learns; every other parameter stays
bit-identical, old outputs unchanged."""

import torch
from torch.nn import functional as F

from unirestore_mm.engine import SqrtScaledOptimWrapperConstructor
from unirestore_mm.models import UniRestore


def test_new_prompt_only_training_leaves_everything_else_bit_identical():
    torch.manual_seed(0)
    # (train vs eval mode differ by ~1e-7 in the attention kernels)
    model = UniRestore(preset='tiny').eval()
    x = torch.rand(2, 3, 32, 32)
    before_out = {t: model.restore(x, task=t, seed=3) for t in model.tasks}
    model.add_task('det', init_from='cls')
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.set_trainable(['prompts'], prompts=['det'])
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == ['prompts.prompts.det']

    # AdamW with weight decay, built like the recipes build it: decay must not
    # touch frozen weights
    wrapper = SqrtScaledOptimWrapperConstructor(
        dict(
            optimizer=dict(type='AdamW', lr=1e-2, weight_decay=0.01),
            lr_scaling=dict(batch_size=2),
        )
    )(model)
    target = torch.rand(2, 3, 32, 32)
    model.train()
    for _ in range(3):
        out = model(x, task='det').image
        loss = F.l1_loss(out, target)
        wrapper.update_params(loss)

    after = model.state_dict()
    assert set(after) == set(before)
    changed = [k for k in after if not torch.equal(after[k], before[k])]
    assert changed == ['prompts.prompts.det']
    model.eval()
    for t, ref in before_out.items():
        assert torch.equal(model.restore(x, task=t, seed=3), ref), t
    assert not torch.equal(
        model.restore(x, task='det', seed=3), before_out['cls']
    )
